"""What one trial runs: the job spec an objective binds (or a workflow of stages), checked
against the backend, and each attempt's :class:`~aid2e.types.JobRequest`.

``set_objective_function`` / ``set_script_objective`` / ``set_container_objective`` bind a job
spec (a function, a script, a container); a backend runs it natively or through a plugin's
adapter (a container becomes a script), which is checked when the objective is bound, not
when the first trial runs. ``set_workflow`` binds a :class:`~aid2e.stages.BoundWorkflow`
instead (its jobs' requests are the workflow's). The spec is saved with the campaign and
restored on resume (a workflow is bound again with ``set_workflow``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import serialize
from .errors import ConfigError
from .types import JobAdapter, JobRequest, Resources

NO_OBJECTIVE = ("no objective: call set_objective_function, set_script_objective, "
                "set_container_objective or set_workflow before running trials")


class Objective:
    """The job spec trials of one scheduler run on ``backend`` (see the module docstring)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._make: Callable[[], Any] | None = None
        self._hint: str | None = None
        #: The spec of the run in progress (also what is saved, and what retries and adoption use):
        #: a job spec, or a BoundWorkflow.
        self.spec: Any = None

    @property
    def workflow(self) -> Any:
        """The run's BoundWorkflow (None for a trial of one job)."""
        from .stages import BoundWorkflow

        return self.spec if isinstance(self.spec, BoundWorkflow) else None

    @property
    def job(self) -> Any:
        """The run's job spec (None for a workflow)."""
        return None if self.workflow is not None else self.spec

    def bind(self, make_spec: Callable[[], Any], spec: Any = None) -> None:
        """Use ``make_spec()`` for every trial, after checking now what can be checked: that the
        backend can run the kind, and the adapter's own ``check``."""
        if spec is not None:
            adapter = self.adapter_for(spec.kind)
            if adapter is not None and adapter.check is not None:
                adapter.check(spec, self.backend)
        self._make = make_spec

    def for_run(self) -> Any:
        """The spec for the run about to start (a one-line ConfigError if none is bound)."""
        if self._make is None:
            raise ConfigError(self._hint or NO_OBJECTIVE)
        self.spec = self._make()
        return self.spec

    def adapter_for(self, kind: str) -> JobAdapter | None:
        """``None`` if the backend runs ``kind`` natively, else the adapter that makes it runnable."""
        from .stages import adapter_for

        return adapter_for(self.backend, kind)

    def request(self, *, experiment: str, index: int, parameters: Mapping[str, Any], workdir: str,
                resources: Resources, token: str) -> JobRequest:
        """The (adapted) job request of one attempt of trial ``index``."""
        request = JobRequest(experiment=experiment, trial_index=index, parameters=dict(parameters),
                             job=self.spec, workdir=workdir, resources=resources, token=token)
        adapter = self.adapter_for(request.job.kind)
        return request if adapter is None else adapter.adapt(request, self.backend)

    def dump(self) -> dict[str, Any] | None:
        """The spec as saved with the campaign (None before a run)."""
        if self.workflow is not None:
            return {"kind": "workflow", **self.workflow.dump()}
        return None if self.spec is None else serialize.dump_job(self.spec)

    def cannot_restore(self, why: str) -> None:
        """The saved spec could not be bound again: the next run says ``why`` and how to bind one."""
        self._hint = why

    def restore(self, data: Mapping[str, Any] | None) -> None:
        """Bind the spec saved with a campaign; when it cannot be (a function no longer
        importable), the next run says how to bind one again."""
        if data is None:
            self._hint = ("the saved state holds no objective: call set_objective_function, "
                          "set_script_objective or set_container_objective")
            return
        if data.get("kind") == "workflow":
            self._hint = ("the campaign's trials are made of stages and its workflow cannot be restored: call "
                          "set_workflow(...) with it before run_optimization")
            return
        try:
            spec = serialize.load_job(dict(data))
            self.bind(lambda: spec, spec)
        except ConfigError as exc:
            self._hint = (f"the saved objective cannot be restored ({exc}); call "
                          "set_objective_function(...) again before run_optimization")


__all__ = ["NO_OBJECTIVE", "Objective"]
