"""Who controls a campaign: one controller per campaign directory, held by a kernel file lock.

A controller that runs trials holds an exclusive lock on ``<campaign dir>/aid2e.lock`` and writes
who it is into that file (pid, host, start time, campaign id). A second controller, or
``aid2e resume`` on the same directory, fails at once with a :class:`CampaignLockedError` naming
the holder; ``aid2e status`` reads the holder without taking the lock.

The lock is a byte-range lock (``fcntl``): open-file-description locks (``F_OFD_SETLK``) where
the kernel has them (Linux >= 3.15), so two schedulers in one process exclude each other too and
closing an unrelated descriptor of the file does not drop the lock; POSIX record locks
(``lockf``) elsewhere, plus a per-process table. The kernel releases the lock when the holder
exits or is killed, so a crash never leaves a stale lock behind.

On shared file systems: byte-range locks are what NFS locks. NFSv4 keeps them on the server
(a client host that dies loses its lock when its lease expires, 90 s by default); NFSv3 needs the
lock daemons (``rpc.statd``/``lockd``, i.e. not mounted with ``nolock``), else the lock is local
to one host. Lustre and GPFS honour them when mounted with ``flock`` (Lustre) or by default
(GPFS). Where locks are not shared between hosts, two controllers on different hosts are not
excluded: the campaign id in the state still keeps trial files of different campaigns apart.

Stdlib only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Aid2eError

LOCK_FILE = "aid2e.lock"
#: Longest holder description read from a lock file (it is ours, but may be damaged).
MAX_LOCK_BYTES = 4096
_OFD = hasattr(fcntl, "F_OFD_SETLK")
_held_here: dict[tuple[int, int], CampaignLock] = {}  # (st_dev, st_ino) -> lock (non-OFD only)
_table_lock = threading.Lock()


class CampaignLockedError(Aid2eError):
    """Another controller holds the campaign (the message names it and what to do)."""


@dataclass(frozen=True)
class Holder:
    """The controller that holds a campaign's lock."""

    pid: int | None
    host: str
    since: float | None
    campaign: str = ""

    def describe(self) -> str:
        since = "" if self.since is None else " since " + time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        here = " (this process)" if self.pid == os.getpid() and self.host == socket.gethostname() else ""
        return f"pid {self.pid if self.pid is not None else '?'} on {self.host or '?'}{since}{here}"


def _flock_struct(kind: int) -> bytes:
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (+ pad)
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on the whole file without waiting; False if someone holds it."""
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _is_locked(fd: int) -> bool:
    """Whether some open file description (this process's included, with OFD locks) holds it."""
    if _OFD:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK))
    else:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, _flock_struct(fcntl.F_WRLCK))
    return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK


def _read_holder(path: Path) -> Holder:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            data = json.loads(os.read(fd, MAX_LOCK_BYTES).decode(errors="replace") or "{}")
        finally:
            os.close(fd)
    except (OSError, ValueError, RecursionError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, since = data.get("pid"), data.get("since")
    return Holder(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=str(data.get("host", "")),
        since=float(since) if isinstance(since, (int, float)) and not isinstance(since, bool) else None,
        campaign=str(data.get("campaign", "")),
    )


def holder(directory: str | os.PathLike[str]) -> Holder | None:
    """The controller holding the campaign in ``directory`` now, or None (no lock taken)."""
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _OFD:
            with _table_lock:
                stat = os.fstat(fd)
                if (stat.st_dev, stat.st_ino) in _held_here:
                    return _read_holder(path)
        locked = _is_locked(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _read_holder(path) if locked else None


def locked_error(directory: str | os.PathLike[str], owner: Holder) -> CampaignLockedError:
    """The one-line error for a campaign ``owner`` holds."""
    return CampaignLockedError(f"campaign {directory} is run by another controller: {owner.describe()}; stop "
                               f"that one first, or look at it with aid2e status {directory}")


def refuse_if_held(directory: str | os.PathLike[str]) -> None:
    """Raise :class:`CampaignLockedError` if a controller holds the campaign in ``directory``
    now (without taking the lock: for failing at once, before any work)."""
    owner = holder(directory)
    if owner is not None:
        raise locked_error(directory, owner)


class CampaignLock:
    """The exclusive lock of one campaign directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, directory: str | os.PathLike[str], campaign: str = "") -> None:
        self.directory = Path(directory)
        self.campaign = campaign
        self._fd: int | None = None
        self._key: tuple[int, int] | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`CampaignLockedError` naming the holder (never waits)."""
        if self._fd is not None:
            return
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise Aid2eError(f"cannot open the campaign lock {path}: {exc.strerror or exc}") from exc
        try:
            key = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
            with _table_lock:
                taken_here = not _OFD and key in _held_here
                if taken_here or not _try_lock(fd):
                    raise locked_error(self.directory, _read_holder(path))
                if not _OFD:
                    _held_here[key] = self
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                      "campaign": self.campaign}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._key = fd, key

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases it). The file stays: removing it
        would let a waiting controller lock a file that a third one then recreates."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        with _table_lock:
            if self._key is not None and _held_here.get(self._key) is self:
                del _held_here[self._key]
        os.close(fd)

    def __enter__(self) -> CampaignLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


__all__ = ["LOCK_FILE", "CampaignLock", "CampaignLockedError", "Holder", "holder", "locked_error", "refuse_if_held"]
