"""aid2e-psij: trials as batch jobs on Slurm, PBS, LSF, Flux, Cobalt (or local processes)
through PSI/J (plugin entry point, group ``aid2e``)."""

from __future__ import annotations

from collections.abc import Iterator

from aid2e import BackendInfo, hookimpl

from .runner import PsijConfig, PsijRunner, SlurmRunner

__all__ = ["PsijConfig", "PsijRunner", "SlurmRunner"]
__version__ = "0.1.0"


@hookimpl
def aid2e_backends() -> Iterator[BackendInfo]:
    yield BackendInfo(
        name="psij",
        factory=PsijRunner,
        kinds=PsijRunner.kinds,
        config_type=PsijConfig,
        description="batch systems through PSI/J (slurm, pbs, lsf, flux, cobalt, local)",
    )
    yield BackendInfo(
        name="slurm",
        factory=SlurmRunner,
        kinds=SlurmRunner.kinds,
        config_type=PsijConfig,
        description="Slurm through PSI/J, with the older scheduler's SlurmRunner arguments",
    )
