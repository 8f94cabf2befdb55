"""Names for code written for the older AID2E scheduler: ``from scheduler import AxScheduler, JobLibRunner``.

Every name here is the very object ``aid2e`` exports (``scheduler.X is aid2e.X``).
"""

from __future__ import annotations

from typing import Any

import aid2e


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(aid2e, name)
