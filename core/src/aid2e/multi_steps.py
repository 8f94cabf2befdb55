"""The older AID2E scheduler's ``MultiStepsFunction``, run as a :class:`~aid2e.workflow.Workflow`.

Code written for the older scheduler keeps working::

    from scheduler import MultiStepsFunction            # or scheduler.job.multi_steps_job
    from scheduler.job.job import JobType

    steps = MultiStepsFunction(
        objective_funcs={"simulate": {"func": simulate, "runner": slurm_runner},
                         "analyze": {"func": analyze, "runner": None}},     # None: the scheduler's runner
        deps={"analyze": {"parent": "simulate", "dep_map": "all2one"}},
        global_parameters={"particle": ["pi+", "kaon+"], "eta": [1.5, 2.5]},
        global_parameters_steps=["simulate"],
    )
    scheduler.set_objective_function(steps)

What each piece becomes (:meth:`MultiStepsFunction.to_workflow`):

* each step of ``objective_funcs`` is a :class:`~aid2e.workflow.Stage` of that name, run on its
  ``runner``: ``job_type`` FUNCTION (``func``), SCRIPT (``script_path``) or CONTAINER
  (``container_image``, ``container_command``);
* the steps run parents first (``deps``: ``{step: parent}`` or ``{step: {"parent": ..., "dep_map":
  "one2one" | "all2one"}}``), and ``final`` (default: the last step) last: its result is the
  trial's metrics;
* a step in ``global_parameters_steps`` fans out over the product of ``global_parameters``, each
  job getting its values as keyword arguments; a fanned-out step whose parent fans out too and
  maps ``one2one`` runs one job per parent job (``per=``);
* a function step with a parent gets the parent's result as the keyword argument named by its
  ``parent_result_parameter_name`` (default ``parent_result_parameter``): for ``one2one`` the
  result of the parent job with the same values, for ``all2one`` ``{key: result}`` over the
  parent's jobs, keyed as the older scheduler did (``tuple(sorted(values.items()))``, or
  ``"None"`` for a step that did not fan out).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from .errors import ConfigError

#: The keyword argument a function step gets its parent's result under, unless its step says otherwise.
PARENT_RESULT_PARAMETER = "parent_result_parameter"
DEP_MAPS = ("one2one", "all2one")


class JobType(enum.Enum):
    """The older scheduler's job types (``scheduler.job.job.JobType``)."""

    FUNCTION = "function"
    SCRIPT = "script"
    CONTAINER = "container"
    MULTISTEPSFUNCTION = "multistepsfunction"


class MultiStepsFunction:
    """Steps on their own runners with fan-out over "global parameters" (see the module docstring)."""

    def __init__(self, objective_funcs: Mapping[str, Mapping[str, Any]], deps: Mapping[str, Any] | None = None,
                 final: str | None = None, global_parameters: Mapping[str, Sequence[Any]] | None = None,
                 global_parameters_steps: Sequence[str] = ()) -> None:
        self.objective_funcs = objective_funcs
        self.deps = deps
        self.final = final
        self.global_parameters = global_parameters
        self.global_parameters_steps = global_parameters_steps
        self.__name__ = f"mul_func.{'_'.join(str(k) for k in objective_funcs)}" if isinstance(
            objective_funcs, Mapping) else "mul_func"

    def to_workflow(self) -> Any:
        """The :class:`~aid2e.workflow.Workflow` these steps run as; a one-line ConfigError names a
        step that cannot be one."""
        from .workflow import Stage, Workflow

        steps = self.objective_funcs
        if not isinstance(steps, Mapping) or not steps:
            raise ConfigError("MultiStepsFunction objective_funcs must be a non-empty dict of step name -> "
                              "{'func': ..., 'runner': ...}")
        parents = _parents(self.deps, steps)
        fanned = set(self.global_parameters_steps or ())
        unknown = sorted(fanned - set(steps))
        if unknown:
            raise ConfigError(f"MultiStepsFunction global_parameters_steps names unknown step(s) {unknown}")
        if fanned and not self.global_parameters:
            raise ConfigError("MultiStepsFunction global_parameters_steps needs global_parameters {name: [values]}")
        order = _order(steps, parents, self.final)
        stages = []
        for name in order:
            step = steps[name]
            if not isinstance(step, Mapping):
                raise ConfigError(f"MultiStepsFunction step {name!r} must be a dict like {{'func': f, 'runner': r}}, "
                                  f"got {type(step).__name__}")
            parent, dep_map = parents.get(name, (None, "one2one"))
            kind = _job_type(step.get("job_type", JobType.FUNCTION), name)
            options: dict[str, Any] = {"backend": step.get("runner")}
            if name in fanned:
                if parent in fanned and dep_map == "one2one":
                    options["per"] = parent
                else:
                    options["fan_out"] = dict(self.global_parameters or {})
            if kind is JobType.FUNCTION:
                function = step.get("func")
                if not callable(function):
                    raise ConfigError(f"MultiStepsFunction step {name!r}: 'func' must be callable, got {function!r}")
                if parent is not None:
                    function = ParentResults(function=function, keyword=step.get("parent_result_parameter_name")
                                             or PARENT_RESULT_PARAMETER, parent=parent, dep_map=dep_map)
                options["function"] = function
            elif kind is JobType.SCRIPT:
                options["script"] = step.get("script_path")
            else:
                options["container"] = {"image": step.get("container_image"), "command": step.get("container_command")}
            stages.append(Stage(name, **options))
        return Workflow(stages)


@frozen
class ParentResults:
    """A step function called the older scheduler's way: its keyword arguments (trial parameters
    and fan-out values), plus its parent's result(s) under ``keyword``."""

    function: Callable[..., Any]
    keyword: str
    parent: str
    dep_map: str

    def __call__(self, parameters: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        jobs = inputs.get(self.parent, [])
        if self.dep_map == "one2one":
            found = jobs[0]["result"] if len(jobs) == 1 else None
        else:
            found = {tuple(sorted(job["fan_out"].items())) if job["fan_out"] else "None": job["result"]
                     for job in jobs}
        extra = {self.keyword: found} if found else {}
        return self.function(**parameters, **extra)


def _parents(deps: Any, steps: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``{step: (parent, dep_map)}`` from the older scheduler's ``deps``."""
    if deps is None:
        return {}
    if not isinstance(deps, Mapping):
        raise ConfigError(f"MultiStepsFunction deps must be a dict of step -> parent, got {type(deps).__name__}")
    found = {}
    for step, dep in deps.items():
        parent, dep_map = (dep, "one2one") if isinstance(dep, str) else (
            (dep.get("parent"), dep.get("dep_map", "one2one")) if isinstance(dep, Mapping) else (None, None))
        if step not in steps or parent not in steps:
            raise ConfigError(f"MultiStepsFunction deps {step!r} -> {parent!r}: both must be steps of objective_funcs "
                              f"({', '.join(map(str, steps))})")
        if dep_map not in DEP_MAPS:
            raise ConfigError(f"MultiStepsFunction deps {step!r}: dep_map must be one of {', '.join(DEP_MAPS)}, "
                              f"got {dep_map!r}")
        found[step] = (parent, dep_map)
    return found


def _order(steps: Mapping[str, Any], parents: Mapping[str, tuple[str, str]], final: str | None) -> list[str]:
    """The steps in their ``objective_funcs`` order, each after its parent, ``final`` last."""
    if final is not None and final not in steps:
        raise ConfigError(f"MultiStepsFunction final {final!r} is not a step ({', '.join(map(str, steps))})")
    order: list[str] = []
    visiting: set[str] = set()

    def visit(step: str) -> None:
        if step in order:
            return
        if step in visiting:
            raise ConfigError(f"MultiStepsFunction deps form a cycle through step {step!r}")
        visiting.add(step)
        if step in parents:
            visit(parents[step][0])
        order.append(step)

    for step in steps:
        if step != final:
            visit(step)
    if final is not None:
        if any(parent == final for parent, _ in parents.values()):
            raise ConfigError(f"MultiStepsFunction final step {final!r} is the parent of another step: it must "
                              "run last")
        visit(final)
    return order


def _job_type(value: Any, step: str) -> JobType:
    if isinstance(value, JobType) and value is not JobType.MULTISTEPSFUNCTION:
        return value
    if getattr(value, "value", value) in ("function", "script", "container"):  # the older scheduler's own enum
        return JobType(getattr(value, "value", value))
    raise ConfigError(f"MultiStepsFunction step {step!r}: job_type must be JobType.FUNCTION, SCRIPT or CONTAINER, "
                      f"got {value!r}")


__all__ = ["PARENT_RESULT_PARAMETER", "JobType", "MultiStepsFunction", "ParentResults"]
