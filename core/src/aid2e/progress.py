"""Progress of a run: one updating line on a terminal, INFO log records otherwise."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

log = logging.getLogger("aid2e.progress")


class Progress:
    """Shows trials done/running/failed and the best objective value so far."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.tty = bool(isatty()) if enabled is None else enabled
        self._last = ""

    def update(self, *, completed: int, running: int, failed: int, best: str | None) -> None:
        text = f"aid2e: {completed} completed, {running} running, {failed} failed of {self.total}"
        if best:
            text += f"; best {best}"
        if text == self._last:
            return
        self._last = text
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        else:
            log.info(text)

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
