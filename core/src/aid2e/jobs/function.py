"""The ``function`` job kind: call a Python function with a trial's parameters.

Call convention (the older AID2E scheduler's users wrote both styles): a function whose only
positional parameter is not a search-space parameter name gets the parameters as one dict,
``fn(parameterization)``; any other function is called with keywords, ``fn(**parameters)``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import atomic
from ..errors import ConfigError
from ..types import (
    FunctionJob,
    JobRequest,
    JobResult,
    JobState,
    ScriptJob,
    infeasible_reason,
    parse_metrics,
    parse_output,
)
from .worker import call_objective

#: Characters of an exception's text kept in a trial's failure reason.
MAX_EXCEPTION_TEXT = 1000


def call_style_for(function: Callable[..., Any], parameter_names: Iterable[str]) -> str:
    """``"dict"`` or ``"kwargs"``, by the rule in this module's docstring."""
    if not callable(function):
        raise ConfigError(f"the objective function must be callable, got {type(function).__name__}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return "kwargs"
    params = list(signature.parameters.values())
    positional = [
        p for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    if len(positional) == 1 and positional[0].name not in set(parameter_names) and not has_var_kw:
        return "dict"
    return "kwargs"


#: What a workflow stage's function gets when it declares a parameter of that name: the outputs
#: of the jobs it depends on, and its own job directory.
STAGE_KEYWORDS = ("inputs", "job_dir")


def stage_call_style(function: Callable[..., Any], names: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """A workflow stage's function: its call style (the rule above, with the fan-out values among
    the ``names``; parameters named as :data:`STAGE_KEYWORDS` do not count) and which of
    :data:`STAGE_KEYWORDS` it declares."""
    if not callable(function):
        raise ConfigError(f"the stage function must be callable, got {type(function).__name__}")
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return "kwargs", ()
    declared = tuple(name for name in STAGE_KEYWORDS
                     if any(p.name == name and p.kind is not p.VAR_KEYWORD for p in params))
    positional = [p for p in params if p.name not in STAGE_KEYWORDS and p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    if len(positional) == 1 and positional[0].name not in set(names) and not has_var_kw:
        return "dict", declared
    return "kwargs", declared


@attrs.frozen
class StageCall:
    """A workflow stage's function with one job's additions: called with the trial's parameters
    (``call(parameters)``), it calls ``function`` in its ``style`` with the job's fan-out values
    ``added`` to them, and the ``extra`` keywords it declared (``inputs``, ``job_dir``). Picklable
    (the function is pickled as objectives are), so it runs in any backend's worker."""

    function: Callable[..., Any]
    style: str
    added: dict[str, Any]
    extra: dict[str, Any] = attrs.field(factory=dict)

    def __call__(self, parameters: Mapping[str, Any]) -> Any:
        values = {**parameters, **self.added}
        if self.style == "dict":
            return self.function(values, **self.extra)
        return self.function(**values, **self.extra)


def function_job(function: Callable[..., Any], parameter_names: Iterable[str]) -> FunctionJob:
    """A function job for ``function``, its call style chosen from its signature."""
    return FunctionJob(function=function, call_style=call_style_for(function, parameter_names))


def run_function_job(job: FunctionJob, parameters: Mapping[str, Any]) -> JobResult:
    """Call the function and turn what it returns (or raises) into a :class:`JobResult`.

    Never raises for the user's errors. Process pools run :func:`aid2e.jobs.worker.call_objective`
    in the worker instead (it imports nothing of aid2e) and :func:`result_of_call` here.
    """
    return result_of_call(call_objective(job.function, job.call_style, parameters))


def result_of_call(outcome: Any) -> JobResult:
    """The :class:`JobResult` of what :func:`aid2e.jobs.worker.call_objective` returned."""
    if not isinstance(outcome, tuple) or not outcome or outcome[0] not in ("value", "output", "raised"):
        return JobResult(state=JobState.FAILED, message=f"the worker returned {type(outcome).__name__}, "
                                                        "not the outcome of an objective call")
    if outcome[0] == "raised":
        _, name, text, frames = outcome
        if len(text) > MAX_EXCEPTION_TEXT:
            text = f"{text[:MAX_EXCEPTION_TEXT]}... ({len(text)} characters)"
        return JobResult(state=JobState.FAILED, message=f"objective raised {name}: {text}\n{frames}")
    value = outcome[1]
    infeasible = infeasible_reason(value)
    if infeasible is not None:
        return JobResult(state=JobState.COMPLETED, infeasible=infeasible)
    if outcome[0] == "output":
        try:
            return JobResult(state=JobState.COMPLETED, output=parse_output(value))
        except ValueError as exc:
            return JobResult(state=JobState.FAILED, message=f"bad stage output: {exc}")
    try:
        metrics = parse_metrics(value)
    except ValueError as exc:
        return JobResult(state=JobState.FAILED, message=f"bad objective result: {exc}")
    return JobResult(state=JobState.COMPLETED, metrics=metrics)


# ------------------------------------------------------------------ on batch systems
PAYLOAD_FILE = "aid2e_function.pkl"


def check_picklable(spec: FunctionJob, _backend: Any = None) -> bytes:
    """The payload a batch job runs: the function serialised with cloudpickle, plus the
    controller's ``sys.path`` (so modules the function uses import the same way on the compute
    node). A ConfigError says why a function cannot be serialised."""
    import pickle

    import cloudpickle

    module = sys.modules.get(getattr(spec.function, "__module__", "") or "")
    by_value = module is not None and module.__name__ != "__main__" and not _importable(module)
    if by_value:  # e.g. a module loaded from a file path: ship its code, not its name
        cloudpickle.register_pickle_by_value(module)
    try:
        function = cloudpickle.dumps((spec.function, spec.call_style))
    except Exception as exc:
        raise ConfigError(
            f"the objective function cannot be serialised for a batch job ({type(exc).__name__}: {exc}); "
            "define it at module level and keep open files, locks and clients out of its closure"
        ) from exc
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return pickle.dumps({"sys_path": [p for p in sys.path if p], "function": function})


def _importable(module: Any) -> bool:
    """Whether ``import <module name>`` finds this very module's file."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module.__name__)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin == getattr(module, "__file__", None)


def to_script_job(request: JobRequest, _backend: Any = None) -> JobRequest:
    """Adapter for backends that only run programs: the function and its call style are
    pickled into the trial directory and run there by :mod:`aid2e.jobs.run_function` with this
    controller's interpreter (a shared file system is assumed, as on every HPC cluster)."""
    payload = Path(request.workdir) / PAYLOAD_FILE
    atomic.write_bytes(payload, check_picklable(request.job))
    argv = (sys.executable, "-m", "aid2e.jobs.run_function", str(payload))
    returns = "output" if request.job.call_style == "output" else "metrics"
    return attrs.evolve(request, job=ScriptJob(argv=argv, returns=returns))
