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
from pathlib import Path
from types import FrameType
from typing import Any

from attrs import define, field

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


@define
class Interruption:
    """What a Ctrl-C or SIGTERM did to a run, for the message raised at its end."""

    signal: str
    left_running: list[int] = field(factory=list)  # jobs that outlive the controller, left alone
    rerun: list[int] = field(factory=list)  # stopped at SIGTERM; submitted again on resume
    not_stopped: int = 0  # of those, given up but still running (the backend cannot stop them)
    awaited: int = 0  # jobs that could not be left, waited for
    canceled: int = 0  # canceled by a second Ctrl-C

    def message(self, experiment_dir: Path) -> str:
        parts = [f"{self.signal}: no new trials were launched"]
        if self.left_running:
            parts.append(f"{len(self.left_running)} trial(s) left running as jobs "
                         f"({', '.join(map(str, self.left_running))})")
        stopped = len(self.rerun) - self.not_stopped
        if stopped:
            parts.append(f"{stopped} function trial(s) stopped; they run again on resume")
        if self.not_stopped:
            parts.append(f"{self.not_stopped} function trial(s) given up but not stopped (they run in threads, "
                         "which cannot be stopped: until they return or this process exits); they run again "
                         "on resume")
        if self.awaited:
            parts.append(f"{self.awaited} trial(s) that could not be left were waited for")
        if self.canceled:
            parts.append(f"{self.canceled} running trial(s) canceled (abandoned in Ax)")
        return ("; ".join(parts) + f". State saved in {experiment_dir}; resume with: aid2e resume "
                f"{experiment_dir} --max-trials K (or AxScheduler.resume(path, runner) in Python)")
