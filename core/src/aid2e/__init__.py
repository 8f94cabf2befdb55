"""aid2e: Bayesian-optimization campaigns for detector design, run on the machine you choose.

Importing aid2e is light: Ax and torch load only when an experiment runs. Runner classes
from plugins (``JobLibRunner``, ``SlurmRunner``, ...) are looked up lazily among installed
plugins; a missing plugin gives an error naming the distribution to install.
"""

from __future__ import annotations

from typing import Any

from .backend import Backend
from .errors import (
    Aid2eError,
    ConfigError,
    FailureRateExceededError,
    PluginNotInstalledError,
    SubmitError,
)
from .hookspecs import hookimpl, hookspec
from .types import (
    BackendInfo,
    FunctionJob,
    JobAdapter,
    JobHandle,
    JobKind,
    JobRequest,
    JobResult,
    JobState,
    Measurement,
    Resources,
    ScriptJob,
    StorageInfo,
)

__version__ = "0.1.0"

__all__ = [
    "Aid2eError",
    "AxScheduler",
    "Backend",
    "BackendInfo",
    "ConfigError",
    "FailureRateExceededError",
    "FunctionJob",
    "JobAdapter",
    "JobHandle",
    "JobKind",
    "JobRequest",
    "JobResult",
    "JobState",
    "Measurement",
    "PluginNotInstalledError",
    "Resources",
    "ScriptJob",
    "StorageInfo",
    "SubmitError",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
]


def __getattr__(name: str) -> Any:
    if name == "AxScheduler":
        from .ax_scheduler import AxScheduler

        return AxScheduler
    if name == "get_plugin_manager":
        from .plugins import get_plugin_manager

        return get_plugin_manager
    if not name[:1].isupper():  # submodules and dunders: never a plugin runner
        raise AttributeError(f"module 'aid2e' has no attribute {name!r}")
    from .plugins import get_plugin_manager

    return get_plugin_manager().runner_class(name)
