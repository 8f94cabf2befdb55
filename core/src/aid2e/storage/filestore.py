"""The built-in storage: JSON documents in a directory, each write atomic.

No server needed; a campaign's state lives next to its trial directories under
``<job_output_dir>/<experiment name>/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import atomic
from ..errors import StateWriteError

_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


class FileStore:
    """Keeps JSON documents as ``<root>/<key>.json``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"storage key {key!r} may only hold letters, digits, '_', '-', '.'")
        return self.root / f"{key}.json"

    def write_text(self, key: str, text: str) -> None:
        """Replace the document ``key`` with already-serialised JSON text; a failed write (disk
        full, permissions) leaves the old document in place and raises :class:`StateWriteError`."""
        path = self._path(key)
        try:
            atomic.write_bytes(path, text.encode())
        except OSError as exc:
            raise StateWriteError(
                f"cannot save the campaign state to {path}: {exc.strerror or exc}; the last saved state is "
                f"intact: fix that (free space, permissions) and continue with aid2e resume {self.root}") from exc

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"
