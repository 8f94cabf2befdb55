"""What runs inside the local worker processes of a backend's pool: their set-up, and the call
of a function objective (its outcome is turned into a JobResult by :mod:`aid2e.jobs.function`,
in the controller).

Imports nothing beyond the standard library: every worker imports this module first, and on a
small machine eight workers booting at once share two cores (each millisecond here is paid
eight times before the first trial starts).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from typing import Any


def init_worker(env: dict[str, str], controller: int) -> None:
    """Process-worker initializer: die with the controller, leave the terminal's signals to it,
    and the runner's job environment (TMPDIR re-read by tempfile). Function jobs cannot outlive
    their controller anyway; a worker left behind by a SIGKILLed controller would only hold
    memory and a core."""
    import tempfile

    die_with_parent(controller)
    leave_foreground_group()
    os.environ.update(env)
    tempfile.tempdir = None


def leave_foreground_group() -> None:
    """Move this worker (and what it will start) into a process group of its own.

    Ctrl-C (and Ctrl-Z, Ctrl-\\) at a terminal signal its whole foreground process group: a
    worker left there would get a KeyboardInterrupt in the middle of a trial. The controller
    decides what a Ctrl-C does (await the running trials, or cancel them on a second one).
    """
    try:
        os.setpgid(0, 0)
    except OSError:  # already a group leader, or not allowed here: nothing better to do
        pass


def die_with_parent(controller: int) -> None:
    """Ask Linux to SIGKILL this process when the controller (its parent) dies
    (prctl PR_SET_PDEATHSIG); exit at once if it died while this worker was starting."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != controller:
        os._exit(1)


def noop() -> None:
    """A task that only makes a pool start its workers."""


def call_objective(function: Any, call_style: str, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
    """Call a function objective: ``fn(dict(parameters))`` for call styles ``"dict"`` and
    ``"output"``, else ``fn(**parameters)``. Returns ``("value", what it returned)`` (``"output"``
    instead of ``"value"`` for call style ``"output"``: a stage's output, not metrics) or
    ``("raised", exception type name, text, the last two frames)``; never raises for the user's errors."""
    try:
        value = function(dict(parameters)) if call_style in ("dict", "output") else function(**parameters)
        if call_style == "output":
            return ("output", value)
    except Exception as exc:
        import traceback

        frames = "".join(traceback.format_tb(exc.__traceback__)[-2:]).strip()
        return ("raised", type(exc).__name__, str(exc), frames)
    return ("value", value)
