"""The thread that owns Ax during a run: it applies trial outcomes and generates candidates.

Ax has no locks, and model fitting takes from milliseconds (Sobol) to many seconds (BoTorch).
So while ``run_optimization`` runs, every Ax call happens on one :class:`AxOwner` thread: the
scheduler hands it outcomes (``report``) and a number of candidates it wants (``want``), and
takes finished candidates from ``ready``. Completions and launches never wait for a model fit;
outcomes reported before a generation starts are applied before it, so the model sees them.

Outside a run (no thread started) every call runs inline in the caller's thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import GenerationError, error_line

log = logging.getLogger(__name__)


class AxOwner:
    """Runs Ax calls on one thread; see the module docstring."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self._cond = threading.Condition()
        self._ops: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._ready: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._wanted = 0
        self._generating = False
        self._exhausted = False  # Ax said the optimization is complete
        self._starved = False  # Ax generated nothing; retry only after new outcomes
        self._reports = 0  # outcomes reported so far: a generation knows which ones it saw
        self._error: BaseException | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.generation_seconds = 0.0
        self.generations = 0
        self._made_by: dict[int, dict[str, Any]] = {}  # trial index -> its generation's facts, until taken
        #: The next candidates come from a quasi-random generator (known after a generation).
        self.ignores_data = False

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aid2e-ax-owner", daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[int, dict[str, Any]]]:
        """Finish pending outcomes, stop the thread; return candidates nobody took."""
        if self._thread is None:
            return []
        with self._cond:
            self._wanted = 0
            self._stop = True
            self._cond.notify_all()
        self._thread.join()
        self._thread = None
        leftovers = list(self._ready)
        self._ready.clear()
        self._raise_error()
        return leftovers

    # ------------------------------------------------------------ from the scheduler
    def report(self, function: Callable[..., Any], *args: Any) -> None:
        """Apply ``function(bridge, *args)`` on the owner thread (in order, before any new generation)."""
        if self._thread is None:
            function(self.bridge, *args)
            return
        with self._cond:
            self._ops.append((function, args))
            self._reports += 1
            self._starved = False
            self._cond.notify_all()

    def want(self, count: int) -> None:
        """Keep ``count`` candidates ready (generated, not yet taken)."""
        with self._cond:
            if count != self._wanted:
                self._wanted = max(0, count)
                self._cond.notify_all()

    def take(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` ready candidates ``(trial index, parameters)``."""
        self._raise_error()
        taken = []
        with self._cond:
            while self._ready and len(taken) < limit:
                taken.append(self._ready.popleft())
                self._wanted = max(0, self._wanted - 1)
            if taken:
                self._cond.notify_all()
        return taken

    def generations_of(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        """The facts of the generations that made trials ``indices`` (see
        :attr:`aid2e.trials.TrialRecord.generation`); each is given once."""
        with self._cond:
            return {i: self._made_by.pop(i) for i in indices if i in self._made_by}

    def wait_ready(self, timeout: float) -> None:
        """Block until a candidate is ready, Ax gives up, or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready and not self.idle_without_candidates and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    @property
    def idle_without_candidates(self) -> bool:
        """Nothing ready and nothing coming until new outcomes arrive (or ever)."""
        with self._cond:
            return (not self._ready and not self._generating and not self._ops
                    and (self._starved or self._exhausted))

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ops and not self._stop and not self._should_generate():
                    self._cond.wait()
                ops = list(self._ops)
                self._ops.clear()
                stop = self._stop
                count = 0 if ops or stop else self._wanted - len(self._ready)
                self._generating = count > 0
                seen = self._reports
            try:
                for function, args in _batched(ops):
                    function(self.bridge, *args)
                if stop:
                    return
                if count > 0:
                    self._generate(count, seen)
            except BaseException as exc:  # the scheduler re-raises it in its own thread
                log.debug("Ax owner thread failed", exc_info=True)
                with self._cond:
                    self._error = exc
                    self._generating = False
                    self._cond.notify_all()
                return

    def _should_generate(self) -> bool:
        return self._wanted > len(self._ready) and not self._starved and not self._exhausted

    def _generate(self, count: int, seen: int) -> None:
        """Generate up to ``count`` candidates with the outcomes reported before the ``seen``-th
        applied. An empty generation starves the owner (no retry until a new outcome) only if
        no outcome arrived meanwhile: one that did may be the data Ax was waiting for."""
        at, started = time.time(), time.perf_counter()
        try:
            trials, done = self.bridge.next_trials(count)
        except Exception as exc:
            raise GenerationError(f"Ax could not generate new trials ({error_line(exc)[:300]}); the data of the "
                             "completed trials or the generation strategy is what to check") from exc
        elapsed = time.perf_counter() - started
        ignores_data = self.bridge.generation_ignores_data()
        nodes = self.bridge.generation_nodes(list(trials))
        with self._cond:
            for index in trials:
                self._made_by[index] = {"at": at, "seconds": elapsed, "size": len(trials), "node": nodes.get(index)}
            self.ignores_data = ignores_data
            self.generation_seconds += elapsed
            self.generations += 1
            self._ready.extend(trials.items())
            self._exhausted = done
            self._starved = not trials and self._reports == seen
            self._generating = False
            self._cond.notify_all()
        log.debug("generated %d of %d trial(s) in %.3f s", len(trials), count, elapsed)


def _batched(ops: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """Merge runs of consecutive reports of a function that has a ``many`` form (e.g. trial
    completions) into one call of ``many(bridge, [args, ...])``; order is kept."""
    merged: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for function, args in ops:
        many = getattr(function, "many", None)
        if many is None:
            merged.append((function, args))
        elif merged and merged[-1][0] is many:
            merged[-1][1][0].append(args)
        else:
            merged.append((many, ([args],)))
    return merged
