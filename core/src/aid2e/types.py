"""Typed records that cross the plugin boundary (attrs, frozen, keyword-only).

Backends, job kinds and adapters see only these types, never Ax objects. They are
serialised with the converter in :mod:`aid2e.serialize`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Union

from attrs import field, frozen

from .units import duration_seconds, size_bytes, size_mb

#: A parameter value as Ax hands it out.
ParameterValue = Union[bool, int, float, str]


class JobState(str, enum.Enum):
    """A job's state, with PSI/J's names."""

    QUEUED = "QUEUED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        """COMPLETED, FAILED or CANCELED: the job will not change state again."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


def _finite(_instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


@frozen(kw_only=True)
class Measurement:
    """One metric value: a mean and, when known, its standard error."""

    mean: float = field(converter=float, validator=_finite)
    sem: float | None = field(
        default=None, converter=lambda v: None if v is None else float(v), validator=_finite
    )


@frozen(kw_only=True)
class Resources:
    """What one job asks of the machine; backends map what they understand."""

    cpus: int = 1
    memory: str | None = None  # e.g. "4G"
    walltime: str | None = None  # e.g. "01:00:00"
    queue: str | None = None
    account: str | None = None
    extra: dict[str, str] = field(factory=dict)

    def memory_mb(self) -> int | None:
        """``memory`` in MB (read by :func:`aid2e.units.size_bytes`); None when not set."""
        return size_mb(self.memory)

    def walltime_seconds(self) -> int | None:
        """``walltime`` in whole seconds (read by :func:`aid2e.units.duration_seconds`: Slurm's
        ``--time`` forms, or ``"90s"``, ``"2h"``); None when not set."""
        seconds = duration_seconds(self.walltime)
        return None if seconds is None else math.ceil(seconds)


#: Bytes of a memory size: the one reader is :func:`aid2e.units.size_bytes` (kept under this name).
memory_bytes = size_bytes


# ---------------------------------------------------------------- job specs
@frozen(kw_only=True)
class FunctionJob:
    """Call a Python function with the trial's parameters in the backend's worker.

    ``call_style`` is ``"kwargs"`` (``fn(**parameters)``) or ``"dict"`` (``fn(parameters)``), or
    ``"output"``: ``fn(parameters)``, whose return value is the job's output (any JSON value,
    :attr:`JobResult.output`) rather than metrics (a stage before the last one of a workflow).
    """

    kind: ClassVar[str] = "function"
    function: Callable[..., Any]
    call_style: str = "kwargs"


@frozen(kw_only=True)
class ScriptJob:
    """Run a program as a child process, argv only (never a shell).

    ``argv`` is the complete command line (interpreter included); the core's script
    kind builds it from a script path (see :mod:`aid2e.jobs.script`).
    """

    kind: ClassVar[str] = "script"
    argv: tuple[str, ...] = field(converter=tuple)
    env: dict[str, str] = field(factory=dict)
    #: Run (argv, no shell) when the job is canceled, after the signal reached the program: for
    #: what the signal cannot stop, e.g. a container that a daemon keeps running.
    on_cancel: tuple[str, ...] = field(default=(), converter=tuple)
    #: What ``result.json`` holds: ``"metrics"`` (the trial's, required), or ``"output"`` (a stage
    #: before the last one of a workflow: any JSON value, :attr:`JobResult.output`, or no file).
    returns: str = field(default="metrics", validator=lambda _i, _a, v: _one_of(v, RETURNS, "returns"))


#: What a script's result file holds (see ``ScriptJob.returns``).
RETURNS = ("metrics", "output")


def _one_of(value: Any, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


#: Any job spec: a class with a ``kind`` class variable, registered through ``aid2e_job_kinds``.
JobSpec = Any


@frozen(kw_only=True)
class JobRequest:
    """Everything a backend needs to run one trial's job."""

    experiment: str
    trial_index: int
    parameters: dict[str, ParameterValue]
    job: JobSpec
    workdir: str
    resources: Resources = field(factory=Resources)
    #: Facts about the job worth keeping (e.g. a container image digest); the scheduler
    #: stores them in the trial's handle (``JobHandle.extra``).
    labels: dict[str, str] = field(factory=dict)
    #: This attempt's token (saved with the trial before submission). Files a job writes into
    #: its directory carry it, and a backend accepts (or adopts) only files under the token of
    #: the attempt it is asked about: never an older campaign's or an earlier attempt's.
    token: str = ""


@frozen(kw_only=True)
class JobHandle:
    """Everything needed to find a job again, also after the controller restarts."""

    backend: str
    native_id: str
    workdir: str
    submitted_at: float
    extra: dict[str, ParameterValue] = field(factory=dict)


@frozen(kw_only=True)
class JobResult:
    """How a job ended. ``metrics`` is filled only for COMPLETED jobs."""

    state: JobState
    metrics: dict[str, Measurement] = field(factory=dict)
    message: str = ""
    exit_code: int | None = None
    #: The failure came from the infrastructure (job vanished, node lost, preempted), not from
    #: the evaluation itself: the scheduler may run the trial again (config ``max_retries``).
    retryable: bool = False
    #: The evaluation declared the design infeasible (e.g. overlapping volumes): the trial is
    #: abandoned in Ax with this reason rather than failed or completed.
    infeasible: str | None = None
    #: A completed job's output, when it gives one rather than metrics (``ScriptJob.returns``
    #: ``"output"``, a function job of call style ``"output"``): a JSON value, or None.
    output: Any = None

    def __attrs_post_init__(self) -> None:
        if not self.state.is_final:
            raise ValueError(f"a JobResult needs a final state, got {self.state.value}")


# ---------------------------------------------------------------- plugin records
@frozen(kw_only=True)
class JobKind:
    """A kind of job: its name, its spec class and one line for ``plugins list``."""

    name: str
    spec_type: type
    description: str = ""


@frozen(kw_only=True)
class BackendInfo:
    """An execution backend.

    ``factory`` builds the backend (it is the runner class users import, e.g.
    ``JobLibRunner``); ``kinds`` are the job kinds it runs natively.
    """

    name: str
    factory: Callable[..., Any]
    kinds: frozenset[str] = field(converter=frozenset, factory=frozenset)
    config_type: type | None = None
    description: str = ""


@frozen(kw_only=True)
class JobAdapter:
    """Turns a ``kind`` job into a ``produces`` job a backend runs natively.

    ``adapt(request, backend) -> JobRequest`` is called for each trial (``backend`` is the
    runner, so an adapter can read its config, e.g. ``container_engine``).
    ``check(spec, backend)``, if given, is called when the objective is set, before any trial
    exists, and raises :class:`~aid2e.errors.ConfigError` for what can be known then
    (an engine not installed, an image missing).
    """

    kind: str
    produces: str
    adapt: Callable[[JobRequest, Any], JobRequest]
    check: Callable[[Any, Any], None] | None = None
    description: str = ""


#: Key of a result object that declares the design infeasible: ``{"infeasible": "why"}``.
INFEASIBLE_KEY = "infeasible"


def infeasible_reason(value: Any) -> str | None:
    """The reason if ``value`` (a result object) declares the design infeasible, else None."""
    if isinstance(value, Mapping) and INFEASIBLE_KEY in value:
        reason = value[INFEASIBLE_KEY]
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
        if reason is True:
            return "declared infeasible by the objective"
    return None


#: A result key ``<metric>_err`` is the standard error of ``<metric>`` (AID2E's convention).
ERR_SUFFIX = "_err"


def parse_metrics(value: Any) -> dict[str, Measurement]:
    """Turn a user's result into metrics, or raise ``ValueError`` saying what is wrong.

    Accepts ``{metric: number}``, ``{metric: (mean, sem)}``, ``{metric: {"mean": m, "sem": s}}``
    and the AID2E convention ``{metric: m, "<metric>_err": s}`` (the ``_err`` key is the sem of
    ``metric``, not a metric of its own; a ``*_err`` key without its metric stays a metric).
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            f"the objective must return a dict of metric -> number, got {type(value).__name__}"
        )
    if not value:
        raise ValueError("the objective returned no metrics (an empty dict)")
    metrics: dict[str, Measurement] = {}
    for name, raw in value.items():
        if not isinstance(name, str):
            raise ValueError(f"metric names must be strings, got {_brief(name)}")
        try:
            metrics[name] = _measurement(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metric {_brief(name)}: {exc}") from exc
    for name in [n for n in metrics if n.endswith(ERR_SUFFIX) and n[: -len(ERR_SUFFIX)] in metrics]:
        base = name[: -len(ERR_SUFFIX)]
        if metrics[base].sem is not None:
            raise ValueError(f"metric {_brief(base)} has a sem twice: in its value and in {_brief(name)}")
        if metrics[name].sem is not None:
            raise ValueError(f"metric {_brief(name)} is the sem of {_brief(base)}: give it as a bare number")
        try:
            metrics[base] = Measurement(mean=metrics[base].mean, sem=_sem(metrics.pop(name).mean))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metric {_brief(name)}: {exc}") from exc
    return metrics


#: Bytes of JSON a stage's output may take (it is kept in the trial's record and in the next jobs' job files).
OUTPUT_LIMIT = 64 * 1024


def parse_output(value: Any) -> Any:
    """A stage's output, checked: a JSON value (finite numbers) of at most :data:`OUTPUT_LIMIT`
    bytes; a ``ValueError`` says what is wrong. Bigger data belongs in files in the job's directory."""
    import json

    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValueError(f"a stage's output must be a JSON value (dict, list, string, finite number, bool "
                         f"or None): {reason}") from None
    if len(text) > OUTPUT_LIMIT:
        raise ValueError(f"a stage's output is {len(text)} bytes of JSON, more than {OUTPUT_LIMIT}: write large "
                         "data to files in the job's directory and give their names")
    return json.loads(text)


def _measurement(raw: Any) -> Measurement:
    if isinstance(raw, bool):
        raise TypeError(f"expected a number, got {_brief(raw)}")
    if isinstance(raw, Mapping):
        if "mean" not in raw:
            raise ValueError(f'expected {{"mean": m, "sem": s}}, got {_brief(dict(raw))}')
        unknown = set(raw) - {"mean", "sem"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} (only mean and sem)")
        return Measurement(mean=_number(raw["mean"]), sem=_sem(raw.get("sem")))
    if isinstance(raw, (tuple, list)):
        if len(raw) != 2:
            raise ValueError(f"expected (mean, sem), got {_brief(raw)}")
        return Measurement(mean=_number(raw[0]), sem=_sem(raw[1]))
    return Measurement(mean=_number(raw))


def _brief(raw: Any, limit: int = 80) -> str:
    """``repr(raw)``, cut to ``limit`` characters (a huge value must not become a huge message)."""
    try:
        text = repr(raw)
    except (RecursionError, ValueError):  # nested too deeply; an int beyond Python's digit limit
        return f"a {type(raw).__name__} too large to show"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _number(raw: Any) -> float:
    if isinstance(raw, (bool, str, bytes)) or raw is None:  # float("1.5") would accept text
        raise TypeError(f"expected a number, got {_brief(raw)}")
    try:
        value = float(raw)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError("value is too large for a float") from None
    except (TypeError, ValueError):
        raise TypeError(f"expected a number, got {_brief(raw)}") from None
    if not math.isfinite(value):
        raise ValueError(f"value is {value} (not a finite number)")
    return value


def _sem(raw: Any) -> float | None:
    """A standard error: None, or a finite number >= 0."""
    if raw is None:
        return None
    sem = _number(raw)
    if sem < 0:
        raise ValueError(f"sem {sem:g} is negative (a standard error is >= 0)")
    return sem

