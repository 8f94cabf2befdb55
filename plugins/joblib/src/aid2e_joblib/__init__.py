"""aid2e-joblib: run trials on local cores with joblib (plugin entry point, group ``aid2e``)."""

from __future__ import annotations

from collections.abc import Iterator

from aid2e import BackendInfo, hookimpl

from .runner import JobLibConfig, JobLibRunner

__all__ = ["JobLibConfig", "JobLibRunner"]
__version__ = "0.1.0"


@hookimpl
def aid2e_backends() -> Iterator[BackendInfo]:
    yield BackendInfo(
        name="joblib",
        factory=JobLibRunner,
        kinds=JobLibRunner.kinds,
        config_type=JobLibConfig,
        description="local cores: functions in joblib workers, scripts as their own process sessions",
    )
