"""Whether a recorded process still runs: the one pid check, which a reused pid does not fool.

A pid is recorded with its start time (:func:`start_time`, field 22 of ``/proc/<pid>/stat``, in
clock ticks since boot). :func:`pid_alive` then says whether *that* process runs: not a zombie,
and, when a start time was recorded, started then; a later process that got the same pid is not
it. Without ``/proc`` (macOS), start times are unknown (None) and signal 0 is the best there is.
Stdlib only.
"""

from __future__ import annotations

import os

#: States of /proc/<pid>/stat that mean the process has ended (zombie, dead).
_ENDED = ("Z", "X", "x")


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start_time)`` of a process from ``/proc/<pid>/stat``; None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    try:
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        rest = text[text.rindex(")") + 2:].split()
        return rest[0], int(rest[19])  # field 3 (state) and field 22 (starttime)
    except (ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), for :func:`pid_alive`; None if unknown."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def running_start(pid: int) -> int | None:
    """``pid``'s start time if it runs now (not a zombie), to record with it; None if it does not
    or the time is unknown."""
    stat = _proc_stat(pid)
    return None if stat is None or stat[0] in _ENDED else stat[1]


def pid_alive(pid: int | str, started: int | None = None) -> bool:
    """True if ``pid`` runs, is not a zombie and, when ``started`` is given, started then (the
    value :func:`start_time` gave when the pid was recorded). A pid that is not a positive
    integer is not alive."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if not os.path.isdir("/proc"):  # no procfs: signal 0 is the best there is
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OverflowError:
            return False
        return True
    stat = _proc_stat(pid)
    if stat is None or stat[0] in _ENDED:
        return False
    return started is None or stat[1] == started


__all__ = ["pid_alive", "running_start", "start_time"]
