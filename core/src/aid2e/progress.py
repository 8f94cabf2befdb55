"""Progress of a run: one updating line on a terminal, INFO log records otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

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


def best_text(records: Iterable[Any], minimize: Mapping[str, bool]) -> str | None:
    """``"name=value"``: the best value of the one objective over ``records`` (trial records
    with ``metrics``), or None (several objectives: ``minimize`` is empty; no result yet)."""
    if len(minimize) != 1:
        return None
    name, lower = next(iter(minimize.items()))
    values = [r.metrics[name].mean for r in records if name in r.metrics]
    if not values:
        return None
    return f"{name}={(min(values) if lower else max(values)):.6g}"
