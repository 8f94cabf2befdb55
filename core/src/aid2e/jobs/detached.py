"""Script jobs as detached local processes: launched in a session of their own, followed by pid.

:func:`launch` prepares a script job's trial directory and starts its launcher
(:mod:`aid2e.jobs.launch`) as the leader of a new session, so the job outlives the controller
that started it. Its :class:`~aid2e.types.JobHandle` records the launcher's pid and start time
(:mod:`aid2e.procs`): that and the trial directory are all the other functions read, never this
process's memory, so a restarted controller (a new backend instance, the handle read back from
JSON) follows, reads and cancels the job exactly as the one that started it. :func:`adopt` finds
the job of a request whose handle was never saved (the controller died right after submitting).

The joblib backend runs its script jobs with these functions; a local backend of one's own (jobs
under ``nice``, pinned with ``taskset``, ...) is a few lines on top of them
(``docs/tutorials/write-a-backend.md``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .. import atomic
from ..errors import SubmitError, message_line
from ..procs import pid_alive, running_start, start_time
from ..types import JobHandle, JobRequest, JobResult, JobState
from . import script
from .files import CANCEL_MARKER, LAUNCHER_LOG

log = logging.getLogger(__name__)

#: Seconds :func:`adopt` waits for a just-started launcher to write its status file.
ADOPT_PATIENCE = 3.0

#: Pids of launchers this process started and has not reaped yet: they count as running until
#: their reaper has noted how they ended, so no one reads their result before the note is there.
_unreaped: set[int] = set()
_lock = threading.Lock()


def launch(request: JobRequest, backend: str, *, prefix: Sequence[str] = (),
           on_end: Callable[[], object] | None = None) -> JobHandle:
    """Start ``request``'s script job as a detached process and return its handle, named for the
    backend ``backend`` (``JobHandle.backend``).

    ``prefix`` is a command put before the launcher's, one that runs the rest of its argv in its
    own process (by ``exec``): ``["nice", "-n", "10"]``, ``["taskset", "-c", "0-3"]``, ``["ionice",
    "-c", "3"]``; the handle's pid is then the launcher's. ``on_end``, if given, is called (from a
    thread of this process) when the launcher exits, e.g. to wake a backend's :meth:`wait`.
    Raises :class:`~aid2e.errors.SubmitError` when the trial directory cannot be prepared or the
    command cannot be started.
    """
    try:
        workdir = script.prepare_workdir(request)
    except (OSError, ValueError) as exc:
        raise SubmitError(f"cannot prepare trial directory {request.workdir}: {message_line(exc)}") from exc
    argv = [*prefix, *script.launcher_argv(workdir)]
    try:
        launcher_log = open(workdir / LAUNCHER_LOG, "xb")  # new: prepare_workdir removed an earlier one
    except OSError as exc:
        raise SubmitError(f"cannot create {workdir / LAUNCHER_LOG}: {message_line(exc)}") from exc
    try:
        proc = subprocess.Popen(argv, cwd=workdir, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=launcher_log, close_fds=True)
    except OSError as exc:
        launcher_log.close()
        raise SubmitError(f"cannot start the job launcher {argv[0]}: {message_line(exc)}") from exc
    extra: dict[str, Any] = {"kind": "script", "pid": proc.pid}
    started = start_time(proc.pid)  # not reaped before the thread below starts
    if started is not None:
        extra["start_time"] = started
    with _lock:
        _unreaped.add(proc.pid)
    threading.Thread(target=_reap, args=(proc, workdir, launcher_log, on_end), daemon=True,
                     name=f"aid2e-reap-{proc.pid}").start()
    return JobHandle(backend=backend, native_id=str(proc.pid), workdir=str(workdir), submitted_at=time.time(),
                     extra=extra)


def _reap(proc: subprocess.Popen, workdir: Path, launcher_log: IO[bytes],
          on_end: Callable[[], object] | None) -> None:
    """Wait for the launcher (no zombie is left); if it ended without recording how the job ended
    (killed, or it could not start), say how it ended in its log, where :func:`result` reads it."""
    try:
        code = proc.wait()
        if not script.ended_under(workdir, None):
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            launcher_log.write(f"aid2e: the job launcher {how}\n".encode())
    except Exception:  # noqa: BLE001 - the pid is released and on_end called whatever happens here
        log.debug("reaping launcher %s failed", proc.pid, exc_info=True)
    finally:
        launcher_log.close()
        with _lock:
            _unreaped.discard(proc.pid)
    if on_end is not None:
        on_end()


def _pid(handle: JobHandle) -> int:
    return int(handle.extra.get("pid", handle.native_id))


def running(handle: JobHandle) -> bool:
    """Whether the job's launcher still runs: the process the handle names (``extra["pid"]``, else
    its native id), not a later one that got its pid (the handle records its start time)."""
    try:
        pid = _pid(handle)
    except (TypeError, ValueError):
        return False  # names no process
    with _lock:
        if pid in _unreaped:
            return True
    started = handle.extra.get("start_time")
    return pid_alive(pid, started if isinstance(started, int) and not isinstance(started, bool) else None)


def _live(handle: JobHandle) -> bool:
    """Running, and the launcher has not recorded the end yet (it writes it just before it exits)."""
    return running(handle) and not script.ended_under(handle.workdir, script.handle_token(handle))


def state(handle: JobHandle) -> JobState:
    """The job's state: CANCELED once :func:`cancel` stopped it, ACTIVE while it runs, else how it
    ended (:func:`result`). Never raises: a handle that names no job is FAILED."""
    try:
        if (Path(handle.workdir) / CANCEL_MARKER).exists():
            return JobState.CANCELED
        if _live(handle):
            return JobState.ACTIVE
    except Exception as exc:  # noqa: BLE001 - one bad handle must not hide a backend's other jobs
        log.warning("cannot poll job %s: %s", handle.native_id, message_line(exc))
        return JobState.FAILED
    return result(handle).state


def result(handle: JobHandle) -> JobResult:
    """How an ended job ended, from its trial directory (:func:`aid2e.jobs.script.read_result`,
    under the handle's attempt token); when the launcher recorded nothing, what its log says.
    Never raises."""
    workdir = Path(handle.workdir)
    try:
        if (workdir / CANCEL_MARKER).exists():
            return script.read_result(workdir, canceled=True)
        found = script.read_result(workdir, token=script.handle_token(handle))
        if found.state is JobState.FAILED and not script.ended_under(workdir, None):
            launcher = "; ".join(line.strip() for line in script.tail(workdir / LAUNCHER_LOG, 500).splitlines()
                                 if line.strip())
            if launcher:  # one line, still retryable
                found = attrs.evolve(found, message=f"{found.message}; launcher log: {launcher}")
        return found
    except Exception as exc:  # noqa: BLE001 - never raise for one bad handle
        return JobResult(state=JobState.FAILED,
                         message=f"cannot read the result of job {handle.native_id}: {message_line(exc)}")


def cancel(handle: JobHandle) -> bool:
    """Stop a running job: mark it canceled in its trial directory (any controller then polls it
    CANCELED) and send SIGTERM to its launcher's session. The launcher passes it on to the
    script's process group and SIGKILLs what is left :data:`aid2e.jobs.launch.KILL_GRACE` seconds
    later, whether or not this process still runs. A job that already ended is left as it ended.
    Returns whether the job was running."""
    if not _live(handle):
        return False  # ended (or its pid is now another process's): nothing to stop
    try:
        atomic.write_json(Path(handle.workdir) / CANCEL_MARKER, {"native_id": handle.native_id,
                                                                "canceled_at": time.time()})
    except OSError:
        log.debug("cannot write the cancel marker of job %s", handle.native_id, exc_info=True)
    try:
        os.killpg(_pid(handle), signal.SIGTERM)
    except (ProcessLookupError, PermissionError):  # it ended meanwhile
        pass
    return True


def adopt(request: JobRequest, backend: str, *, patience: float = ADOPT_PATIENCE) -> JobHandle | None:
    """The handle of the job launched for ``request`` by a controller that died before saving it,
    or None if there is none (the trial is then submitted again). Found by the launcher's status
    record in the trial directory, written under the request's attempt token: files another
    campaign or an earlier attempt left there are not it. A launcher started a moment ago writes
    its record soon: a directory prepared for this attempt is watched up to ``patience`` seconds."""
    workdir = Path(request.workdir)
    if not script.prepared_under(workdir, request.token):
        return None  # never prepared for this attempt, so never launched for it
    deadline = time.monotonic() + patience
    status = script.launched_under(workdir, request.token)
    while status is None and time.monotonic() < deadline:
        time.sleep(0.05)
        status = script.launched_under(workdir, request.token)
    if status is None or not isinstance(status.get("pid"), int):
        return None
    pid = status["pid"]
    extra: dict[str, Any] = {"kind": "script", "pid": pid}
    started = running_start(pid)
    if started is not None:
        extra["start_time"] = started
    return JobHandle(backend=backend, native_id=str(pid), workdir=str(workdir),
                     submitted_at=float(status.get("started_at", time.time())), extra=extra)


__all__ = ["ADOPT_PATIENCE", "adopt", "cancel", "launch", "result", "running", "state"]
