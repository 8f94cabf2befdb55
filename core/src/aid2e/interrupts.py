"""Ctrl-C and SIGTERM during a run: counted, never raised in the middle of the scheduler's work.

While :class:`StopSignals` is active (in the main thread, and only where the process still has
Python's default handlers), SIGINT and SIGTERM only record that they arrived; the scheduler's loop
looks at :attr:`StopSignals.presses` between steps, so a save, a submission or an Ax call is never
cut in half. Elsewhere (another thread, a custom handler installed by the user) nothing is
installed and a ``KeyboardInterrupt`` the loop catches is counted through :meth:`press`.

The scheduler's rules (see ``AxScheduler.run_optimization``): the first Ctrl-C (or a SIGTERM, as
a batch system sends at a walltime limit) stops launching, saves the state and leaves the jobs
that can outlive the controller running; a second Ctrl-C cancels the running jobs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

#: Seconds the loop may block before it looks at the counters again.
CHECK_INTERVAL = 0.25


def second_press_grace() -> float:
    """Seconds to wait for a second Ctrl-C before leaving jobs running: a person at a terminal
    gets two, a script or batch job none."""
    try:
        return 2.0 if sys.stdin is not None and sys.stdin.isatty() else 0.0
    except (ValueError, OSError):
        return 0.0


class StopSignals:
    """Context manager counting Ctrl-C presses (``presses``) and SIGTERMs (``terminated``)."""

    def __init__(self) -> None:
        self.presses = 0
        self.terminated = False
        self._saved: dict[int, Any] = {}

    def press(self) -> None:
        """Count a Ctrl-C that arrived as a ``KeyboardInterrupt`` (no handler could be installed)."""
        self.presses += 1

    @property
    def stop(self) -> bool:
        """Launching must stop (Ctrl-C or SIGTERM)."""
        return self.presses > 0 or self.terminated

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            self.terminated = True
        else:
            self.presses += 1

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum, default in defaults.items():
            try:
                if signal.getsignal(signum) is default:
                    self._saved[signum] = signal.signal(signum, self._on_signal)
            except (ValueError, OSError):  # not allowed here (embedded interpreters)
                log.debug("cannot handle signal %s here", signum, exc_info=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous)
        self._saved.clear()
