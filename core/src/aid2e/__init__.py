"""aid2e: Bayesian-optimization campaigns for detector design, run on the machine you choose.

Importing aid2e costs almost nothing: every public name loads on first use, Ax and torch only
when an experiment runs (the job launcher on batch nodes imports this package too). Runner
classes from plugins (``JobLibRunner``, ``SlurmRunner``, ...) are looked up among installed
plugins; a missing plugin gives an error naming the distribution to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "AxScheduler": "ax_scheduler",
    "Backend": "backend",
    "get_plugin_manager": "plugins",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "MultiStepsFunction": "multi_steps",
    "Stage": "workflow",
    "Workflow": "workflow",
    **dict.fromkeys(
        ["Aid2eError", "ConfigError", "FailureRateExceededError", "PluginConflictError", "PluginNotInstalledError",
         "SubmitError"],
        "errors",
    ),
    **dict.fromkeys(
        ["BackendInfo", "FunctionJob", "JobAdapter", "JobHandle", "JobKind", "JobRequest", "JobResult",
         "JobState", "Measurement", "Resources", "ScriptJob"],
        "types",
    ),
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .ax_scheduler import AxScheduler  # noqa: F401
    from .backend import Backend  # noqa: F401
    from .errors import (  # noqa: F401
        Aid2eError,
        ConfigError,
        FailureRateExceededError,
        PluginConflictError,
        PluginNotInstalledError,
        SubmitError,
    )
    from .hookspecs import hookimpl, hookspec  # noqa: F401
    from .multi_steps import MultiStepsFunction  # noqa: F401
    from .plugins import get_plugin_manager  # noqa: F401
    from .types import (  # noqa: F401
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
    )
    from .workflow import Stage, Workflow  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    if not name[:1].isupper():  # submodules and dunders: never a plugin runner
        raise AttributeError(f"module 'aid2e' has no attribute {name!r}")
    from .plugins import get_plugin_manager

    return get_plugin_manager().runner_class(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
