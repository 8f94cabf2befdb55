"""Read the files a trial controls: regular files only, no symlink followed, never blocking, bounded.

A trial (a script, a container writing into its bind-mounted directory) decides what its
directory holds: ``result.json`` may be a FIFO (an ordinary ``open`` blocks forever), a symlink
to ``/dev/zero`` (an ordinary ``read`` eats memory) or to a host file (whose content would end up
in a failure message and the logs), a directory, or gigabytes of text. Everything aid2e reads
from a trial directory goes through this module, which guarantees:

* the trial directory (the file's parent) is opened with ``O_DIRECTORY | O_NOFOLLOW`` and the file
  relative to it with ``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC``: a symlink as the file, or as the
  trial directory itself, is refused, never followed; so nothing outside the trial directory is
  read (directories above the trial directory are the controller's and are trusted);
* the file must be a regular file, checked before opening (``lstat``: a FIFO or device is never
  even opened) and again on the open descriptor (``fstat``: a file swapped in between is caught);
* at most ``limit`` bytes are read: :func:`read_text` refuses a larger file, :func:`read_tail`
  reads its last ``limit`` bytes; bytes are decoded with ``errors="replace"``;
* a refusal is an :class:`UntrustedFileError` whose one-line message names the file (by its name
  in the trial directory) and what is wrong with it, never its content or a symlink's target; a
  missing file is :class:`FileNotFoundError`;
* :func:`parse_json` turns untrusted text into a value or a one-line ``ValueError``: nesting too
  deep for the parser, integers too long for Python, invalid JSON; nothing else escapes.

Not guarded: a hard link in the trial directory is read like any regular file (a trial can only
hard-link files it can read itself, and a container only files inside its mount).

Stdlib only (imported where jobs run too).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

#: Bytes read at most from a JSON file of the job contract (result, status).
JSON_LIMIT = 1 << 20
#: A directory is opened only to find the file in it (O_PATH: no read permission needed).
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY)
_ONLY_REGULAR = "aid2e reads only regular files in the trial directory"
_KINDS = ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UntrustedFileError(ValueError):
    """A file in a trial directory that aid2e will not read (the message says why, in one line)."""


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _open(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` and its ``fstat`` (see the module docstring)."""
    name = path.name
    try:
        dir_fd = os.open(path.parent, _DIR_FLAGS | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UntrustedFileError(f"the directory of {name} is not a directory but a symlink or a file: "
                                     f"{_ONLY_REGULAR}") from exc
        raise UntrustedFileError(f"cannot open the directory of {name}: {exc.strerror}") from exc
    try:
        try:
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise UntrustedFileError(f"cannot read {name}: {exc.strerror}") from exc
        if not stat.S_ISREG(before.st_mode):
            raise UntrustedFileError(f"{name} is {_kind(before.st_mode)}: {_ONLY_REGULAR}")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UntrustedFileError(f"{name} is a symlink: {_ONLY_REGULAR}") from exc
            raise UntrustedFileError(f"cannot read {name}: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # swapped between the lstat and the open
        os.close(fd)
        raise UntrustedFileError(f"{name} is {_kind(info.st_mode)}: {_ONLY_REGULAR}")
    return fd, info


def _read_upto(fd: int, limit: int) -> bytes:
    chunks = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], limit: int = JSON_LIMIT) -> str:
    """The whole text of the regular file ``path``; :class:`UntrustedFileError` if it is not one
    or holds more than ``limit`` bytes, :class:`FileNotFoundError` if it is missing."""
    path = Path(path)
    fd, info = _open(path)
    try:
        if info.st_size > limit:
            raise UntrustedFileError(f"{path.name} is larger than {limit} bytes ({info.st_size})")
        data = _read_upto(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise UntrustedFileError(f"{path.name} is larger than {limit} bytes")
    return data.decode(errors="replace")


def read_tail(path: str | os.PathLike[str], limit: int) -> str:
    """The last ``limit`` bytes of the regular file ``path`` as text; :class:`UntrustedFileError`
    if it is not a regular file, :class:`FileNotFoundError` if it is missing."""
    fd, info = _open(Path(path))
    try:
        os.lseek(fd, max(0, info.st_size - limit), os.SEEK_SET)
        data = _read_upto(fd, limit)
    finally:
        os.close(fd)
    return data.decode(errors="replace")


def parse_json(text: str) -> Any:
    """The value of the JSON ``text``, or ``ValueError`` with a one-line reason (never another
    exception: deep nesting and over-long integers are reasons too)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        raise ValueError(" ".join(str(exc).split())) from exc


__all__ = ["JSON_LIMIT", "UntrustedFileError", "parse_json", "read_tail", "read_text"]
