"""The scheduler's clock: wall time, monotonic time and sleeping, replaceable in tests.

The trial loop reads time only through a :class:`Clock`, so a simulated backend with its own
clock (:mod:`aid2e.testing.simulator`) can drive hours of a campaign in milliseconds.
"""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    """What the loop needs of time."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (recorded in trial records)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back (deadlines, intervals)."""

    def sleep(self, seconds: float) -> None:
        """Pause for ``seconds`` (a simulated clock advances instead)."""


class SystemClock:
    """The real clock."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)


SYSTEM_CLOCK: Clock = SystemClock()
