"""The ``container -> script`` adapter: every backend that runs script jobs runs containers.

``check(spec, runner)`` runs once, when the objective is set, before any trial exists: the
engine must be known and installed, its daemon reachable and (unless ``verify_image=False`` or a
pull policy other than ``never``) the image present; anything else is a one-line ConfigError.

``adapt(request, runner)`` runs for each trial: it resolves the image to its ID (a SIF file's
sha256, a directory's real path), builds the engine command line (:mod:`aid2e_containers.command`,
with the request's Resources as ``--cpus``/``--memory``; for Apptainer the container's
environment goes to ``container.env`` in the trial directory) and returns a script job running
it. No backend special-cases containers: joblib runs the engine locally, a batch backend runs it
on the compute node. The trial's handle keeps
``container_engine``, ``container_image``, ``container_image_id`` (and ``container_image_digest``,
``container_name`` when there are such) from the request's labels.

A problem that appears only later (the image removed, the daemon gone) is left to the engine:
the trial fails with the engine's own message (in ``stderr.txt``) and a non-zero exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from aid2e import atomic
from aid2e.errors import ConfigError
from aid2e.jobs.files import JOB_FILE
from aid2e.types import JobRequest, ScriptJob

from .command import (
    APPTAINER_ENV_FILE,
    apptainer_argv,
    apptainer_env_file,
    apptainer_evaluates_env,
    container_env,
    container_name,
    oci_argv,
)
from .engines import Engine, engine_output_line, inspect_image, resolve_engine, run_engine
from .spec import ContainerJob


def _spec(job: Any) -> ContainerJob:
    if not isinstance(job, ContainerJob):
        raise TypeError(f"the container adapter needs a ContainerJob, got {type(job).__name__}")
    return job


def check(spec: ContainerJob, runner: Any) -> None:
    """Raise ConfigError for what is wrong with a container objective on ``runner``."""
    spec = _spec(spec)
    engine = resolve_engine(spec, runner)
    for bind in spec.binds:
        source = bind.split(":")[0]
        if not Path(source).exists():
            raise ConfigError(f"container bind source {source} does not exist")
    if engine.is_oci:
        _check_oci(engine, spec)
        return
    apptainer_env_file(spec.env)  # a value Apptainer cannot carry is a ConfigError now, not in every trial
    if spec.verify_image:
        info = inspect_image(engine, spec)
        if info.error and not info.image_id and not spec.image.startswith(("docker://", "oras://", "library://",
                                                                           "shub://", "http://", "https://")):
            raise ConfigError(f"container image {spec.image!r} for {engine.name}: {info.error}")


def _check_oci(engine: Engine, spec: ContainerJob) -> None:
    where = f" at {engine.host}" if engine.host else ""
    if spec.pull != "never" or not spec.verify_image:
        proc = run_engine(engine, "version")  # is the daemon reachable at all?
        if proc.returncode != 0:
            raise ConfigError(f"{engine.name}{where} is not usable: {engine_output_line(proc.stderr or proc.stdout)}")
        return
    info = inspect_image(engine, spec)
    if info.image_id:
        return
    proc = run_engine(engine, "version")
    if proc.returncode != 0:
        raise ConfigError(f"{engine.name}{where} is not usable: {engine_output_line(proc.stderr or proc.stdout)}")
    raise ConfigError(
        f"container image {spec.image!r} is not in {engine.name}'s local images{where} ({info.error}); "
        f"pull or build it first, or pass pull='missing'"
    )


def adapt(request: JobRequest, runner: Any) -> JobRequest:
    """The trial's container job as a script job running the engine's command line."""
    spec = _spec(request.job)
    engine = resolve_engine(spec, runner)
    trial_dir = Path(request.workdir).absolute()
    trial_dir.mkdir(parents=True, exist_ok=True)
    info = inspect_image(engine, spec)
    env = container_env(request.trial_index, request.experiment, spec.env, job_file=(trial_dir / JOB_FILE).is_file())
    labels = {
        "container_engine": engine.name,
        "container_image": spec.image,
        "container_image_id": info.image_id or f"unresolved: {info.error}",
    }
    if info.digest:
        labels["container_image_digest"] = info.digest
    if engine.is_oci:
        name = container_name(request.experiment, request.trial_index)
        labels["container_name"] = name
        argv = oci_argv(engine, spec, image=info.run_ref, trial_dir=str(trial_dir), env=env, name=name,
                        labels={"aid2e.experiment": request.experiment, "aid2e.trial": str(request.trial_index)},
                        resources=request.resources)
        # a container whose PID 1 ignores SIGTERM outlives its CLI: remove it when canceled
        on_cancel = [*engine.base_argv(), "kill", name]
    else:
        env_file = trial_dir / APPTAINER_ENV_FILE
        # replaced, never written through: a rerun's trial directory may hold what the last attempt left there
        atomic.write_bytes(env_file, apptainer_env_file(env, evaluated=apptainer_evaluates_env(spec.options)).encode())
        argv = apptainer_argv(engine, spec, image=info.run_ref, trial_dir=str(trial_dir), env_file=str(env_file),
                              resources=request.resources)
        on_cancel = []
    return attrs.evolve(request, job=ScriptJob(argv=argv, on_cancel=on_cancel), labels={**request.labels, **labels})
