"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

Stdlib only: the job launcher imports it on compute nodes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) and make sure others cannot write into it, whatever the
    umask: state and trial directories must not be world- or group-writable."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    mode = directory.stat().st_mode
    if mode & 0o022:
        os.chmod(directory, mode & ~0o022 & 0o7777)
    return directory


def write_bytes(path: str | os.PathLike[str], data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a torn one.
    ``sync=False`` skips the fsyncs (the rename stays atomic; after a power cut the old file may
    come back): for markers whose truth is also kept in fsynced state."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if not sync:
        return
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: str | os.PathLike[str], obj: Any, *, sync: bool = True) -> None:
    """Atomically write ``obj`` as JSON (NaN is refused: it is not JSON)."""
    write_bytes(path, json.dumps(obj, allow_nan=False, indent=1).encode(), sync=sync)
