"""Running trials made of stages: a workflow bound to backends, each trial's jobs, what may start.

:class:`BoundWorkflow` is a :class:`~aid2e.workflow.Workflow` checked against the scheduler
(``AxScheduler.set_workflow``): each stage's backend (the scheduler's runner by default) can run
its kind of job, its function imports, its script exists, its argv names only trial parameters
and fan-out values, its resources read. For each trial it gives:

* the jobs (:meth:`BoundWorkflow.new_jobs`), one :class:`~aid2e.trials.JobRecord` per job of
  :func:`~aid2e.workflow.plan`, all WAITING;
* which of them may start (:meth:`BoundWorkflow.ready`): the jobs whose inputs exist. A job
  depends on the jobs of every earlier stage, except that a ``per`` stage's job depends only on
  the same-named job of the stages it takes its fan-out from (so ``reconstruct`` of one
  simulation starts as soon as that simulation ends, while others still run);
* each job's request (:meth:`BoundWorkflow.request`): its directory ``trial_<i>/<stage>/<job>/``
  (``attempt_<n>/`` below it for a retry), its job file (``$AID2E_JOB_FILE``: stage, fan-out
  values, and the inputs: for each earlier stage the jobs it depends on, with their directory and
  output), and its call or argv with ``{name}`` s filled in.

Every stage's job but the last gives an *output* (any JSON value, or none): a script's
``result.json`` if it writes one, a function's return value. The last stage runs once and gives
the trial's metrics. The loop (:mod:`aid2e.loop`) submits, follows and judges the jobs
(:func:`aid2e.outcome.judge_job`); this module decides nothing about outcomes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from . import atomic, serialize
from .errors import ConfigError
from .jobs.files import JOB_FILE
from .jobs.function import StageCall, stage_call_style
from .jobs.script import script_job
from .trials import JobRecord, TrialRecord, new_token
from .types import FunctionJob, JobRequest, Resources, ScriptJob
from .workflow import PlannedJob, Stage, Workflow, fields_of, fill_argv, placeholders, plan, workflow_problems


def adapter_for(backend: Any, kind: str) -> Any:
    """``None`` if ``backend`` runs ``kind`` jobs natively, else the plugin adapter that makes
    them runnable there; a one-line ConfigError if none does."""
    from .plugins import get_plugin_manager

    kinds = frozenset(getattr(backend, "kinds", frozenset()))
    if kind in kinds:
        return None
    adapter = get_plugin_manager().job_adapter(kind, kinds)
    if adapter is not None:
        return adapter
    raise ConfigError(
        f"{type(backend).__name__} cannot run {kind} jobs (it runs: "
        f"{', '.join(sorted(kinds))}) and no installed plugin adapts them"
    )


@frozen
class BoundStage:
    """A stage ready to run: its backend (None: the scheduler's), its job spec (a template for
    scripts and containers, filled per job), its resources and its function's call style."""

    stage: Stage
    backend: Any
    kind: str
    spec: Any
    resources: Resources
    call_style: str = "kwargs"
    declared: tuple[str, ...] = ()  # which of STAGE_KEYWORDS (inputs, job_dir) its function takes


class BoundWorkflow:
    """A workflow checked against ``runner`` (the scheduler's) and the trial ``parameter_names``
    (None: not known yet, argv names are not checked); see the module docstring."""

    def __init__(self, workflow: Workflow, runner: Any, parameter_names: Iterable[str] | None,
                 default_resources: Resources) -> None:
        self.workflow = workflow
        self.runner = runner
        names = set(parameter_names) if parameter_names is not None else None
        problems = workflow_problems([fields_of(stage) for stage in workflow.stages], names, to_run=True)
        if problems:  # what running it needs (the rest was checked when the Workflow was made)
            raise ConfigError(problems[0].message())
        self.plan: dict[str, list[PlannedJob]] = plan(workflow)
        last = workflow.stages[-1]
        self.final = f"{last.name}/{self.plan[last.name][0].name}"
        self.stages: dict[str, BoundStage] = {}
        for stage in workflow.stages:
            fan_out_keys = set(self.plan[stage.name][0].fan_out)
            self.stages[stage.name] = _bind(stage, runner, names, fan_out_keys, default_resources,
                                            final=stage is last)
        self._depends = self._dependencies()

    # ------------------------------------------------------------ the jobs of a trial
    def new_jobs(self) -> dict[str, JobRecord]:
        """A new trial's jobs, all WAITING, in stage order."""
        jobs = {}
        for stage in self.workflow.stages:
            for job in self.plan[stage.name]:
                record = JobRecord(stage=stage.name, name=job.name, fan_out=dict(job.fan_out), token=new_token())
                jobs[record.key] = record
        return jobs

    def keys(self) -> list[str]:
        """Every job's key (``stage/job``), in stage order."""
        return list(self._depends)

    def _dependencies(self) -> dict[str, list[str]]:
        """Each job's key -> the keys of the jobs whose outputs it needs (see the module docstring)."""
        lineage = {}
        for stage in self.workflow.stages:
            lineage[stage.name] = lineage[stage.per] if stage.per is not None else stage.name
        depends: dict[str, list[str]] = {}
        earlier: list[Stage] = []
        for stage in self.workflow.stages:
            for job in self.plan[stage.name]:
                keys = []
                for before in earlier:
                    same = lineage[before.name] == lineage[stage.name]
                    keys += [f"{before.name}/{j.name}" for j in self.plan[before.name]
                             if not same or j.name == job.name]
                depends[f"{stage.name}/{job.name}"] = keys
            earlier.append(stage)
        return depends

    def ready(self, record: TrialRecord) -> list[str]:
        """The WAITING jobs of ``record`` whose inputs all exist (their jobs COMPLETED)."""
        jobs = record.jobs
        return [key for key, job in jobs.items()
                if job.status == "WAITING" and all(jobs[k].status == "COMPLETED" for k in self._depends[key])]

    def stage_of(self, key: str) -> BoundStage:
        return self.stages[key.split("/", 1)[0]]

    def backend_of(self, key: str) -> Any:
        """The backend job ``key`` runs on (None: the scheduler's runner)."""
        return self.stage_of(key).backend

    def backends(self) -> list[Any]:
        """The stages' own backends (not the scheduler's), each once."""
        found: list[Any] = []
        for bound in self.stages.values():
            if bound.backend is not None and not any(bound.backend is b for b in found):
                found.append(bound.backend)
        return found

    # ------------------------------------------------------------ one job
    def job_dir(self, trial_dir: Path, job: JobRecord) -> Path:
        """``trial_<i>/<stage>/<job>/``, and ``attempt_<n>/`` below it for a retry."""
        base = trial_dir / job.stage / job.name
        return base if job.attempts <= 1 else base / f"attempt_{job.attempts}"

    def inputs(self, record: TrialRecord, key: str, trial_dir: Path) -> dict[str, list[dict[str, Any]]]:
        """For each earlier stage, the jobs ``key`` depends on: their fan-out values, directory and output."""
        found: dict[str, list[dict[str, Any]]] = {}
        for dep in self._depends[key]:
            job = record.jobs[dep]
            where = job.handle.workdir if job.handle is not None else str(self.job_dir(trial_dir, job))
            found.setdefault(job.stage, []).append({"fan_out": dict(job.fan_out), "dir": where, "result": job.output})
        return found

    def request(self, *, experiment: str, record: TrialRecord, key: str, trial_dir: Path) -> JobRequest:
        """Job ``key`` of trial ``record``'s request for its current attempt, adapted to its
        backend; its directory and job file are written."""
        job = record.jobs[key]
        bound = self.stages[job.stage]
        workdir = self.job_dir(trial_dir, job)
        atomic.private_dir(workdir)
        inputs = self.inputs(record, key, trial_dir)
        job_file = workdir / JOB_FILE
        atomic.write_json(job_file, {"stage": job.stage, "job": job.name, "trial": record.index,
                                     "fan_out": job.fan_out, "inputs": inputs})
        final = key == self.final
        values = {**record.parameters, **job.fan_out}
        spec = bound.spec
        if isinstance(spec, FunctionJob):
            offered = {"inputs": inputs, "job_dir": str(workdir)}
            call = StageCall(function=spec.function, style=bound.call_style, added=dict(job.fan_out),
                             extra={name: offered[name] for name in bound.declared})
            spec = FunctionJob(function=call, call_style="dict" if final else "output")
        elif isinstance(spec, ScriptJob):
            spec = attrs.evolve(spec, argv=fill_argv(spec.argv, values), returns="metrics" if final else "output",
                                env={**spec.env, "AID2E_JOB_FILE": str(job_file)})
        else:  # a container (or another plugin kind with a command)
            spec = attrs.evolve(spec, command=fill_argv(spec.command, values))
        request = JobRequest(experiment=experiment, trial_index=record.index, parameters=dict(record.parameters),
                             job=spec, workdir=str(workdir), resources=bound.resources, token=job.token,
                             labels={"stage": job.stage, "job": job.name})
        adapter = adapter_for(bound.backend if bound.backend is not None else self.runner, spec.kind)
        if adapter is not None:
            request = adapter.adapt(request, bound.backend if bound.backend is not None else self.runner)
            if isinstance(request.job, ScriptJob) and not final:
                request = attrs.evolve(request, job=attrs.evolve(request.job, returns="output"))
        return request

    # ------------------------------------------------------------ saved with the campaign
    def dump(self) -> dict[str, Any]:
        """The workflow as saved with the campaign (what ``aid2e status`` and a resume read)."""
        from .state_loader import describe_backend

        stages = []
        for bound in self.stages.values():
            stage = bound.stage
            data: dict[str, Any] = {"name": stage.name, "kind": bound.kind}
            if isinstance(bound.spec, FunctionJob):
                data["function"] = serialize.qualified_name(bound.spec.function)
            elif isinstance(bound.spec, ScriptJob):
                data["script"] = list(bound.spec.argv)
            else:
                data["container"] = serialize.dump_job(bound.spec)
            data["backend"] = None if bound.backend is None else describe_backend(bound.backend)
            data["fan_out"] = stage.fan_out if stage.fan_out is None or isinstance(stage.fan_out, Mapping) \
                else list(stage.fan_out)
            data["per"] = stage.per
            data["resources"] = attrs.asdict(bound.resources)
            data["exit_codes"] = {str(code): action for code, action in stage.exit_codes.items()}
            stages.append(data)
        return {"stages": stages}


def workflow_from_dump(data: Mapping[str, Any]) -> Workflow:
    """The workflow :meth:`BoundWorkflow.dump` saved, built again: functions imported by name,
    stage backends rebuilt from their descriptions. A one-line ConfigError says what cannot be
    (a function defined in a script or a lambda; a backend that does not describe itself)."""
    from .state_loader import rebuild_backend

    stages = []
    for item in data.get("stages") or []:
        where = f"stage {item.get('name')!r}"
        options: dict[str, Any] = {}
        if "function" in item:
            if str(item["function"]).startswith("<unimportable"):
                raise ConfigError(f"{where}: its function {item['function']} cannot be imported by name")
            options["function"] = serialize.resolve(item["function"], what=f"{where}: function")
        elif "script" in item:
            options["script"] = list(item["script"])
        else:
            options["container"] = {k: v for k, v in dict(item["container"]).items() if k != "kind"}
        if item.get("backend") is not None:
            try:
                options["backend"] = rebuild_backend(item["backend"])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
        exit_codes = {int(code): action for code, action in (item.get("exit_codes") or {}).items()}
        stages.append(Stage(item["name"], fan_out=item.get("fan_out"), per=item.get("per"),
                            resources=item.get("resources"), exit_codes=exit_codes, **options))
    return Workflow(stages)


def _bind(stage: Stage, runner: Any, names: set[str] | None, fan_out_keys: set[str], default: Resources, *,
          final: bool) -> BoundStage:
    where = f"stage {stage.name!r}"
    backend = stage.backend
    if backend is not None:
        for method in ("submit", "poll", "result", "cancel"):
            if not callable(getattr(backend, method, None)):
                raise ConfigError(f"{where}: backend must be an aid2e backend (e.g. SlurmRunner(...)), got "
                                  f"{type(backend).__name__}")
    runs_on = backend if backend is not None else runner
    resources = _resources(stage, default)
    known = None if names is None else names | fan_out_keys
    if stage.function is not None:
        function = stage.function
        if isinstance(function, str):
            function = serialize.resolve(function, what=f"{where}: function")
        if not callable(function):
            raise ConfigError(f"{where}: function must be callable or 'module:qualname', got {type(function).__name__}")
        style, declared = stage_call_style(function, known if known is not None else fan_out_keys)
        spec: Any = FunctionJob(function=function, call_style="dict")
        kind = "function"
    elif stage.script is not None:
        spec, kind, style, declared = _script_spec(stage, where), "script", "kwargs", ()
    else:
        from .plugins import get_plugin_manager

        container = dict(stage.container or {})
        kind = "container"
        try:
            spec = get_plugin_manager().job_kind("container").spec_type(**container)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: bad container: {exc}") from exc
        style, declared = "kwargs", ()
    adapter = adapter_for(runs_on, kind)
    if adapter is not None and adapter.check is not None:  # e.g. an image missing, a function that cannot be pickled
        adapter.check(spec, runs_on)
    return BoundStage(stage=stage, backend=backend, kind=kind, spec=spec, resources=resources,
                      call_style=style, declared=declared)


def _script_spec(stage: Stage, where: str) -> ScriptJob:
    """A script stage's argv: a path (run by its interpreter, see :func:`aid2e.jobs.script.script_job`)
    or an argv list, whose relative paths to existing files are made absolute now (jobs run in
    their own directories)."""
    script = stage.script
    if isinstance(script, (str, os.PathLike)):
        try:
            return script_job(script)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    if isinstance(script, Sequence) and script and all(isinstance(a, (str, os.PathLike)) for a in script):
        return ScriptJob(argv=absolute_paths([str(a) for a in script], Path.cwd()))
    raise ConfigError(f"{where}: script must be a path or a non-empty list of argv strings, got {script!r}")


def absolute_paths(argv: Sequence[str], base: Path) -> list[str]:
    """``argv`` with each relative path to an existing file under ``base`` made absolute (jobs run
    in their own directories); elements with ``{name}`` s, and the rest, stay as they are."""
    return [str((base / a).resolve()) if not placeholders([a]) and not os.path.isabs(a) and (base / a).is_file()
            else a for a in argv]


def _resources(stage: Stage, default: Resources) -> Resources:
    if stage.resources is None:
        return default
    if not isinstance(stage.resources, Mapping):
        raise ConfigError(f"stage {stage.name!r}: resources must be a dict like {{'cpus': 1, 'memory': '4G'}}, "
                          f"got {stage.resources!r}")
    try:
        resources = attrs.evolve(default, **dict(stage.resources))
        resources.memory_mb()
        resources.walltime_seconds()
    except (TypeError, ValueError) as exc:
        valid = ", ".join(f.name for f in attrs.fields(Resources))
        raise ConfigError(f"stage {stage.name!r}: resources: {exc} (keys: {valid})") from exc
    return resources


__all__ = ["BoundStage", "BoundWorkflow", "absolute_paths", "adapter_for", "workflow_from_dump"]
