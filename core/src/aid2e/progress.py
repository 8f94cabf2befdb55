"""Progress of a run: one updating line on a terminal, INFO log records otherwise; a line for
each trial that ends (index, state, metrics or reason, duration, best so far) and, every
``summary_every`` seconds, a summary (counts, elapsed time, an estimate of the time left), so a
campaign running for days inside a batch job leaves a log a person can read."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

log = logging.getLogger("aid2e.progress")


class Progress:
    """Shows trials done/running/failed and the best objective value so far."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, summary_every: float = 600.0) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.tty = bool(isatty()) if enabled is None else enabled
        self._last = ""
        self.clock, self.summary_every = clock, summary_every
        self._started = self._summarized = clock()

    def line(self, text: str, level: int = logging.INFO) -> None:
        """A line that stays (above the updating line on a terminal; off one, a log record of
        ``level``: a failed trial's line is a WARNING, seen even where logging is not configured)."""
        if self.tty:
            self.stream.write("\r\033[K" + text + "\n" + self._last)
            self.stream.flush()
        else:
            log.log(level, text)

    def tick(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Every ``summary_every`` seconds: the counts so far, the time elapsed and, once trials
        have finished, an estimate of the time left (``counts`` is called only then)."""
        now = self.clock()
        if now - self._summarized < self.summary_every:
            return
        self._summarized = now
        found = counts()
        finished = found["COMPLETED"] + found["FAILED"] + found["ABANDONED"]
        elapsed = now - self._started
        text = (f"aid2e: {finished} of {self.total} trials finished ({found['COMPLETED']} completed, "
                f"{found['FAILED']} failed, {found['ABANDONED']} abandoned), {found['RUNNING']} running; "
                f"{duration_text(elapsed)} elapsed")
        if 0 < finished < self.total:
            text += f", about {duration_text(elapsed / finished * (self.total - finished))} left"
        self.line(text)

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
        else:  # a log file gets a line per trial that ends and the periodic summary, not every change
            log.debug(text)

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def duration_text(seconds: float) -> str:
    """``"42s"``, ``"7m05s"``, ``"3h12m"``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def trial_text(record: Any, best: str | None) -> str:
    """The line of a trial that ended: index, state, metrics or reason, duration, best so far."""
    state = record.status + (" (penalized)" if record.penalized else "")
    if record.status == "COMPLETED":
        what = ", ".join(f"{name}={m.mean:.6g}" + (f" +- {m.sem:.2g}" if m.sem is not None else "")
                         for name, m in record.metrics.items())
        if record.penalized and record.message:
            what += f" ({record.message.splitlines()[0][:200]})"
    else:
        what = record.message.splitlines()[0][:300] if record.message else ""
    took = "" if record.ended_at is None else f" in {duration_text(record.ended_at - record.started_at)}"
    return f"trial {record.index} {state}: {what}{took}" + (f"; best {best}" if best else "")


def best_text(records: Iterable[Any], minimize: Mapping[str, bool]) -> str | None:
    """``"name=value"``: the best value of the one objective over ``records`` (trial records
    with ``metrics``; penalized ones hold the penalty, never the best), or None (several
    objectives: ``minimize`` is empty; no result yet)."""
    if len(minimize) != 1:
        return None
    name, lower = next(iter(minimize.items()))
    values = [r.metrics[name].mean for r in records if name in r.metrics and not r.penalized]
    if not values:
        return None
    return f"{name}={(min(values) if lower else max(values)):.6g}"
