"""aid2e-panda: run trials on the grid as PanDA tasks through panda-client (entry point, group ``aid2e``).

panda-client itself is imported only when a runner starts (it reads its server address from the
environment at import time), never when this plugin is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

from aid2e import BackendInfo, hookimpl

from .runner import PanDAConfig, PanDAiDDSRunner, PanDARunner

__all__ = ["PanDAConfig", "PanDARunner", "PanDAiDDSRunner"]
__version__ = "0.1.0"


@hookimpl
def aid2e_backends() -> Iterator[BackendInfo]:
    yield BackendInfo(
        name="panda",
        factory=PanDARunner,
        kinds=PanDARunner.kinds,
        config_type=PanDAConfig,
        description="the grid: one PanDA task per trial via panda-client (X509 proxy or OIDC token)",
    )
    yield BackendInfo(
        name="panda-idds",
        factory=PanDAiDDSRunner,
        kinds=PanDAiDDSRunner.kinds,
        config_type=PanDAConfig,
        description="the older scheduler's name for the panda backend (same runner)",
    )
