"""aid2e-containers: container objectives (Podman, Docker, Apptainer/Singularity) on any backend.

Plugin entry point (group ``aid2e``): the ``container`` job kind (:class:`ContainerJob`) and its
``container -> script`` adapter, so every backend that runs script jobs runs containers::

    runner = JobLibRunner(config={"container_engine": "podman"})
    scheduler = AxScheduler(ax_client, runner)
    scheduler.set_container_objective("localhost/sim:1", "sim --params params.json")
"""

from __future__ import annotations

from collections.abc import Iterator

from aid2e import JobAdapter, JobKind, hookimpl

from .adapter import adapt, check
from .spec import ENGINES, TRIAL_MOUNT, ContainerJob

__all__ = ["ENGINES", "TRIAL_MOUNT", "ContainerJob", "adapt", "check"]
__version__ = "0.1.0"


@hookimpl
def aid2e_job_kinds() -> Iterator[JobKind]:
    yield JobKind(name="container", spec_type=ContainerJob,
                  description="a command run in a container image (podman, docker, apptainer, singularity)")


@hookimpl
def aid2e_job_adapters() -> Iterator[JobAdapter]:
    yield JobAdapter(kind="container", produces="script", adapt=adapt, check=check,
                     description="run the container engine's command line as a script job, on any backend")
