"""Writing a campaign's state files: the one place that does, from the scheduler's thread.

Every change rewrites ``trials.json`` (each trial's record); ``experiment.json`` (the same records
plus Ax's snapshot, which costs more as the experiment grows) is rewritten when asked for a full
save or after ``snapshot_interval`` seconds. Ax's snapshot is made where Ax lives (its owner
thread during a run) and handed back here; the next save writes it. Loading replays
``trials.json`` onto the snapshot, so no change is lost. Each write is atomic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import atomic, state
from .clock import SYSTEM_CLOCK, Clock
from .state_records import RecordEncoder, scheduler_json
from .storage.filestore import FileStore
from .trials import TrialRecord

TRIALS_KEY = state.TRIALS_FILE.removesuffix(".json")
EXPERIMENT_KEY = state.EXPERIMENT_FILE.removesuffix(".json")

#: ``run_on_ax(function)`` runs ``function(bridge)`` where Ax lives (now, or on its owner thread).
RunOnAx = Callable[[Callable[[Any], None]], None]


class StateWriter:
    """Writes the state files of one scheduler's campaign (see the module docstring)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.encoder = RecordEncoder()
        #: ``saved_at`` of the trial records last written (or loaded: see :meth:`loaded`).
        self.saved_at: float | None = None
        self._last_snapshot = float("-inf")
        self._pending: tuple[Path, str] | None = None  # a snapshot made on Ax's thread, not yet written
        self._lock = threading.Lock()

    def loaded(self, saved_at: float | None) -> None:
        """The campaign was read from state saved at ``saved_at``; its records are new objects."""
        self.saved_at = saved_at
        self.encoder.forget()

    def text(self, head: Mapping[str, Any], records: Iterable[TrialRecord], home: Path) -> str:
        """The scheduler part of the state (``head`` and every record) as JSON text."""
        return scheduler_json(head, self.encoder.encode(records, home))

    def save(self, directory: Path, scheduler_text: str, *, snapshot: RunOnAx | None, full: bool = False,
             interval: float = 0.0) -> None:
        """Write ``trials.json`` now, and ``experiment.json`` when ``full`` or ``interval`` seconds
        passed since the last one (``snapshot`` reaches Ax; None: no Ax experiment, no snapshot)."""
        self.flush()
        # both files carry the time their records were taken (never earlier than the last)
        captured_at = max(self.clock.time(), (self.saved_at or 0.0) + 1e-6)
        store = FileStore(directory)
        store.write_text(TRIALS_KEY, state.document_text(scheduler_text, captured_at))
        self.saved_at = captured_at
        now = self.clock.monotonic()
        if snapshot is None or not (full or now - self._last_snapshot >= interval):
            return
        self._last_snapshot = now

        def make(bridge: Any) -> None:  # runs where Ax lives
            text = state.document_text(scheduler_text, captured_at, bridge.snapshot())
            with self._lock:
                self._pending = (directory, text)

        snapshot(make)
        self.flush()  # made inline: write it now; made on Ax's thread: the next save or flush does

    def write_file(self, path: str | Path, scheduler_text: str, ax_snapshot: Any) -> None:
        """One file holding the records and Ax's snapshot (``save_experiment``), atomically."""
        atomic.write_bytes(path, state.document_text(scheduler_text, self.clock.time(), ax_snapshot).encode())

    def flush(self) -> None:
        """Write the snapshot Ax's thread handed over, if any."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            FileStore(pending[0]).write_text(EXPERIMENT_KEY, pending[1])


__all__ = ["EXPERIMENT_KEY", "TRIALS_KEY", "StateWriter"]
