"""``AxScheduler``'s configuration: the seed's keys plus aid2e's, checked with one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType

from attrs import asdict, field, frozen

from .errors import ConfigError
from .structure import (
    PathText,
    at_least,
    between,
    check,
    converter,
    non_negative_int,
    positive_int,
    reject_unknown_keys,
    structure,
)
from .units import duration_seconds, size_bytes

#: config 'resources': a dict of :class:`aid2e.types.Resources` fields, checked field by field
#: and kept as a plain dict (saved with the state).
ResourcesDict = NewType("ResourcesDict", dict)
#: What becomes of a trial whose job failed: FAILED in Ax, or completed with config 'penalty'.
FAILURE_POLICIES = ("fail", "penalty")
#: config 'penalty': metric name -> a number or [mean, sem], kept as plain JSON.
PenaltyDict = NewType("PenaltyDict", dict)
#: config 'trial_timeout': seconds, given as a number or a duration like "04:00:00", "90s", "2h".
Seconds = NewType("Seconds", float)


@frozen(kw_only=True)
class SchedulerConfig:
    """What ``AxScheduler(..., config={...})`` accepts.

    * ``monitoring_interval``: longest wait between status checks, seconds (backends that
      can signal a job's end wake the scheduler at once);
    * ``job_output_dir``: trial directories and saved state go under ``<dir>/<experiment>/``;
    * ``synchronous``: one trial at a time;
    * ``cleanup_after_completion``: remove a completed trial's directory (failed ones stay);
    * ``max_parallel_trials``: trials in flight (default: the runner's capacity);
    * ``tolerated_failure_rate``: stop launching when failed / max(finished, 5) exceeds it;
    * ``snapshot_interval``: seconds between full Ax snapshots while running (trial records
      are saved after every change regardless; see ``AxScheduler._save_state``);
    * ``max_retries``: times a trial is run again after an infrastructure failure (its job
      vanished, its node was lost); a script's own non-zero exit is never retried;
    * ``trial_timeout``: seconds after which a running trial is canceled and failed (a number, or a
      duration like ``"04:00:00"``, ``"90s"``, ``"2h"``);
    * ``resources``: what each trial's job asks for, e.g. ``{"cpus": 4, "memory": "8G",
      "walltime": "02:00:00"}`` (fields of :class:`aid2e.types.Resources`); backends and the
      container engines map what they understand (Slurm ``--cpus-per-task``/``--mem``,
      ``podman run --cpus/--memory``).
    * ``failure_policy``: ``"fail"`` (default): a trial whose job fails is FAILED in Ax;
      ``"penalty"``: it completes with the ``penalty`` values instead (recorded as penalized,
      with the failure's reason), so the model learns to avoid the region. Infeasible designs
      are abandoned either way; retries come first;
    * ``penalty``: ``{objective: value}`` (a value may be ``[mean, sem]``), every objective, for
      ``failure_policy: "penalty"``, and for the exit codes a workflow's stage maps to ``"penalty"``
      (then also with ``failure_policy: "fail"``);
    * ``max_failed_trials``: stop launching once more trials than this failed or were penalized
      (as ``tolerated_failure_rate`` does; the run then raises ``FailureRateExceededError``);
    * ``load_if_exists``: when the campaign directory already holds this experiment's saved
      state, continue it (its trials, its Ax experiment) instead of refusing to start; like
      Optuna's ``create_study(load_if_exists=True)``. Without it a new campaign never writes
      over a saved one.
    """

    monitoring_interval: float = field(default=10.0, validator=at_least(0.0))
    job_output_dir: PathText = PathText("./aid2e_jobs")
    synchronous: bool = False
    cleanup_after_completion: bool = False
    max_parallel_trials: int | None = field(default=None, validator=positive_int)
    tolerated_failure_rate: float = field(default=0.5, validator=between(0.0, 1.0))
    snapshot_interval: float = field(default=30.0, validator=at_least(0.0))
    max_retries: int = field(default=0, validator=non_negative_int)
    trial_timeout: Seconds | None = field(default=None, validator=at_least(0.001))
    resources: ResourcesDict | None = None
    failure_policy: str = field(default="fail", validator=check('"fail" or "penalty"', lambda v: v in FAILURE_POLICIES))
    penalty: PenaltyDict | None = None
    max_failed_trials: int | None = field(default=None, validator=non_negative_int)
    load_if_exists: bool = False

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> SchedulerConfig:
        """The config from ``AxScheduler(..., config={...})`` (see :func:`aid2e.structure.structure`)."""
        return structure(cls, config, what="config")

    def trial_resources(self) -> Any:
        """The :class:`aid2e.types.Resources` every trial's job asks for."""
        from .types import Resources

        return Resources(**(self.resources or {}))

    def __attrs_post_init__(self) -> None:
        if self.failure_policy == "penalty" and self.penalty is None:
            raise ConfigError("config 'failure_policy' is \"penalty\": give config 'penalty' a value for every "
                              "objective, like {'loss': 100.0}")

    def penalty_values(self) -> dict[str, Any] | None:
        """config ``penalty`` as :class:`aid2e.types.Measurement` s when failed trials get it
        (failure_policy "penalty"; None: failed trials fail)."""
        return self.penalty_measurements() if self.failure_policy == "penalty" else None

    def penalty_measurements(self) -> dict[str, Any] | None:
        """config ``penalty`` as :class:`aid2e.types.Measurement` s (for exit codes a stage maps to
        "penalty", whatever the policy); None when not given."""
        from .types import Measurement

        if self.penalty is None:
            return None
        return {name: Measurement(mean=value[0], sem=value[1]) if isinstance(value, list) else Measurement(mean=value)
                for name, value in self.penalty.items()}

    def to_dict(self) -> dict[str, Any]:
        """Every setting by its key, as the saved state keeps it."""
        return asdict(self)


def _resources(value: Any, _type: Any = None) -> dict[str, Any]:
    """Check config 'resources' field by field; returns a plain dict (saved with the state)."""
    from attrs import fields as attrs_fields

    from .types import Resources

    if not isinstance(value, Mapping):
        raise ConfigError(f"config 'resources' must be a dict like {{'cpus': 4, 'memory': '8G'}}, got {value!r}")
    reject_unknown_keys(value, [f.name for f in attrs_fields(Resources)], "config 'resources'")
    checked = dict(value)
    cpus = checked.get("cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ConfigError(f"config 'resources' 'cpus' must be a positive integer, got {cpus!r}")
    memory = checked.get("memory")
    if memory is not None:
        if isinstance(memory, int) and not isinstance(memory, bool):
            memory = f"{memory}M"  # a number here is MB, as its text form "4096" is
        try:
            size_bytes(memory)
        except ConfigError as exc:
            raise ConfigError(f"config 'resources' 'memory' must look like '512M' or '8G' (or '1.5G'), "
                              f"got {checked['memory']!r}") from exc
        checked["memory"] = memory.strip().upper()
    for key in ("walltime", "queue", "account"):
        if checked.get(key) is not None and not isinstance(checked[key], str):
            raise ConfigError(f"config 'resources' {key!r} must be a string, got {checked[key]!r}")
    if checked.get("walltime") is not None:
        try:
            duration_seconds(checked["walltime"])
        except ConfigError as exc:
            raise ConfigError(f"config 'resources' 'walltime' must look like '02:00:00', '1-00:00:00' or '2h', "
                              f"got {checked['walltime']!r}") from exc
    extra = checked.get("extra", {})
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ConfigError(f"config 'resources' 'extra' must map strings to strings, got {extra!r}")
    checked["extra"] = dict(extra)
    Resources(**checked)  # the record accepts it
    return checked


def _penalty(value: Any, _type: Any = None) -> dict[str, Any]:
    """Check config 'penalty': ``{metric: number or [mean, sem]}``, finite numbers, sem >= 0."""
    import math

    def number(x: Any) -> bool:
        return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)

    if not isinstance(value, Mapping) or not value:
        raise ConfigError("config 'penalty' must be a dict of objective -> value, like {'loss': 100.0}, "
                          f"got {value!r}")
    checked: dict[str, Any] = {}
    for name, given in value.items():
        pair = list(given) if isinstance(given, (list, tuple)) else None
        if number(given):
            checked[str(name)] = float(given)
        elif pair is not None and len(pair) == 2 and number(pair[0]) and number(pair[1]) and pair[1] >= 0:
            checked[str(name)] = [float(pair[0]), float(pair[1])]
        else:
            raise ConfigError(f"config 'penalty' {name!r} must be a finite number or [mean, sem] with sem >= 0, "
                              f"got {given!r}")
    return checked


def _seconds(value: Any, _type: Any = None) -> float:
    """config 'trial_timeout': a positive number of seconds, or a duration as text."""
    seconds = None
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            seconds = duration_seconds(value, what="")
        except ConfigError:
            seconds = None
    if seconds is None:
        raise ConfigError(f"config 'trial_timeout' must be seconds or a duration like '04:00:00', '90s' or '2h', "
                          f"got {value!r}")
    return float(seconds)


converter.register_structure_hook(Seconds, _seconds)
converter.register_structure_hook(ResourcesDict, _resources)
converter.register_structure_hook(PenaltyDict, _penalty)

__all__ = ["SchedulerConfig", "reject_unknown_keys"]
