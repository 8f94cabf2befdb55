"""The joblib backend: function jobs in local workers, script jobs as their own process sessions.

* Function jobs run :func:`aid2e.jobs.worker.call_objective` in one of ``n_jobs`` slots, in
  the order submitted: each slot of a process pool type is a one-worker pool, joblib's loky
  (``pool="loky"``, the default; from the standalone ``loky`` package) or a
  ``concurrent.futures`` process pool (``"multiprocessing"``), so canceling a running job
  (trial_timeout, a second Ctrl-C) kills the worker that runs it and no other, and the slot's
  next job gets a fresh worker. With ``"threading"`` each job runs in a daemon thread: a thread
  cannot be stopped, so a canceled job is given up (its slot freed) and runs on until it
  returns or the process exits. Function jobs live and die with the controller process: at
  its exit, workers still running a job are killed, so a hung function never keeps it alive.
* Script jobs are detached local processes (:mod:`aid2e.jobs.detached`, never a joblib worker):
  ``python -m aid2e.jobs.launch WORKDIR`` in a new session, so they outlive the controller.
  Their handle records the launcher's pid and its start time (:mod:`aid2e.procs`),
  so a restarted controller finds them again without mistaking a reused pid for the job.

joblib is imported only when a job is run, never at import time.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import os
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from aid2e.backend import Backend
from aid2e.errors import ConfigError, SubmitError, message_line
from aid2e.jobs import detached
from aid2e.jobs.function import result_of_call
from aid2e.jobs.worker import call_objective, init_worker, noop
from aid2e.structure import structure
from aid2e.types import FunctionJob, JobHandle, JobRequest, JobResult, JobState, ScriptJob

log = logging.getLogger(__name__)

POOLS = ("loky", "threading", "multiprocessing")
BACKENDS = POOLS  # the old name
#: Seconds between checks in :meth:`JobLibRunner.wait` for jobs started by an earlier controller.
FOREIGN_POLL = 0.2


@frozen(kw_only=True)
class JobLibConfig:
    """Options of the joblib backend (the ``config`` dict of :class:`JobLibRunner`).

    * ``tmp_dir``: jobs' temporary files go here (``TMPDIR`` of script jobs and of process
      workers; thread workers share the controller's environment);
    * ``container_engine``: read by the container job kind (aid2e-containers).
    """

    tmp_dir: str | None = None
    container_engine: str | None = None


def _shutdown(executor: Any, pool: str, *, wait: bool = False, kill: bool = True) -> None:
    """Stop a one-worker pool. With ``kill`` its worker (and what it started, for loky) is
    SIGKILLed at once, whatever it runs; else it finishes and exits, which lets loky release its
    semaphores without a warning."""
    if pool == "loky":
        executor.shutdown(wait=wait, kill_workers=kill)
        return
    if kill:
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.kill()
    executor.shutdown(wait=wait, cancel_futures=True)


def _structure_config(config: Mapping[str, Any] | JobLibConfig | None) -> JobLibConfig:
    checked = structure(JobLibConfig, config, what="joblib config")
    if not checked.tmp_dir:
        return checked
    tmp_dir = Path(checked.tmp_dir).expanduser().resolve()
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"joblib config 'tmp_dir': cannot create {tmp_dir}: {exc.strerror}") from exc
    return attrs.evolve(checked, tmp_dir=str(tmp_dir))


def _pool_of(pool: str | None, backend: str | None) -> str:
    """The pool type from ``pool=`` or its deprecated alias ``backend=`` (default loky)."""
    if backend is not None:
        if pool is not None:
            raise ConfigError(f"JobLibRunner got pool={pool!r} and backend={backend!r}: give only pool "
                              "(backend is its old name)")
        warnings.warn("JobLibRunner(backend=...) is deprecated: use pool=... (a backend in aid2e is where "
                      "jobs run; the pool is the kind of workers)", DeprecationWarning, stacklevel=3)
    keyword, value = ("backend", backend) if backend is not None else ("pool", pool or "loky")
    if value not in POOLS:
        raise ConfigError(f"unknown joblib {keyword} {value!r} (valid: {', '.join(POOLS)})")
    return value


def _resolve_n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ConfigError(
            f"n_jobs must be a non-zero integer (-1 = all cores), got {n_jobs!r}"
        )
    cpus = os.cpu_count() or 1
    if n_jobs < 0:
        return max(cpus + 1 + n_jobs, 1)
    return n_jobs


# ------------------------------------------------------------------ bookkeeping
@attrs.define
class _Function:
    """A function job: its call, and a future of our own that is PENDING while the job waits
    for a slot, RUNNING on one, and done when it ended."""

    future: concurrent.futures.Future
    call: tuple[Any, str, dict[str, Any]]  # function, call style, parameters
    slot: _Slot | None = None


@attrs.define(eq=False)
class _Slot:
    """One place to run a function job: the job it runs, and (process pools) its one-worker pool."""

    job: tuple[str, str] | None = None
    executor: Any = None


#: Runners whose process workers are killed at interpreter exit if still running a job.
_LIVE_RUNNERS: weakref.WeakSet = weakref.WeakSet()
_exit_hook: list[int] = []  # the pid of the process that registered it


def _kill_running_workers_at_exit() -> None:
    if _exit_hook != [os.getpid()]:
        return  # a forked worker inherits the hook (and the pools' locks as they were): not its job
    for runner in list(_LIVE_RUNNERS):
        runner._kill_busy_workers()


def _register_exit_hook() -> None:
    """Kill busy workers when the interpreter exits, before the pools' own exit handlers run
    (loky's and concurrent.futures' join their workers, which a hung function never lets go).

    Those handlers run at thread shutdown, last registered first; ours is registered after
    the first job was handed to a pool, so after theirs."""
    if _exit_hook:
        return
    _exit_hook.append(os.getpid())
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is not None:
            register(_kill_running_workers_at_exit)
            return
    except RuntimeError:  # the interpreter is already shutting down
        return
    import atexit

    atexit.register(_kill_running_workers_at_exit)


def _key(handle: JobHandle) -> tuple[str, str]:
    return handle.native_id, handle.workdir


def _kind(handle: JobHandle) -> str:
    kind = handle.extra.get("kind")
    if isinstance(kind, str):
        return kind
    return "function" if handle.native_id.startswith("fn-") else "script"


class JobLibRunner(Backend):
    """Run trials on this machine's cores.

    ``n_jobs`` is the number of jobs in flight (``-1``: all cores, ``-2``: all but one, ...),
    ``pool`` the worker pool for function jobs (``"loky"``, ``"threading"`` or
    ``"multiprocessing"``) and ``config`` a dict of :class:`JobLibConfig` fields. ``backend=``
    is the old name of ``pool=`` (deprecated: in aid2e a backend is where jobs run, this one
    is ``"joblib"``); it is still accepted, and saved states that name it still resume.
    """

    name = "joblib"
    kinds = frozenset({"function", "script"})
    poll_interval = FOREIGN_POLL

    def __init__(self, n_jobs: int = -1, pool: str | None = None, config: dict | None = None, *,
                 backend: str | None = None) -> None:
        self._capacity = _resolve_n_jobs(n_jobs)
        self.n_jobs = n_jobs
        self.pool = _pool_of(pool, backend)
        self.config = _structure_config(config)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._slots = [_Slot() for _ in range(self._capacity)]
        self._queue: collections.deque[tuple[str, str]] = collections.deque()  # function jobs waiting for a slot
        self._scripts: set[tuple[str, str]] = set()  # script jobs this runner launched
        self._functions: dict[tuple[str, str], _Function] = {}
        self._canceled: set[tuple[str, str]] = set()
        self._final: dict[tuple[str, str], JobResult] = {}

    @property
    def backend(self) -> str:
        """The old name of :attr:`pool` (read-only)."""
        return self.pool

    def __repr__(self) -> str:
        return f"JobLibRunner(n_jobs={self.n_jobs!r}, pool={self.pool!r})"

    @property
    def capacity(self) -> int:
        return self._capacity

    def status(self) -> str:
        return f"ready, {self._capacity} worker(s) ({self.pool}) on {os.cpu_count()} cores"

    def outlives_controller(self, handle: JobHandle) -> bool:
        """Scripts run in their own sessions and outlive the controller; function jobs die with
        its worker pool."""
        return handle.extra.get("kind") == "script"

    def adopt(self, request: JobRequest) -> JobHandle | None:
        """A script job launched for ``request`` by a controller that died before saving its
        handle: found by the launcher's pid in the trial directory's status file, written under
        the request's attempt token (files another campaign or attempt left there are not it)."""
        return detached.adopt(request, self.name)

    def to_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this runner (kept in the saved state for resume)."""
        return {"n_jobs": self.n_jobs, "pool": self.pool, "config": attrs.asdict(self.config)}

    # ------------------------------------------------------------ function slots
    def _new_executor(self) -> Any:
        """A one-worker pool for a slot of a process pool type."""
        if self.pool == "loky":
            # The standalone loky package (the one joblib bundles) boots a worker in 40 ms
            # instead of 150 ms: its workers do not import joblib.
            try:
                from loky import ProcessPoolExecutor as LokyPool
            except ImportError:
                from joblib.externals.loky import ProcessPoolExecutor as LokyPool

            return LokyPool(max_workers=1, env=self._job_env() or None,
                            initializer=init_worker, initargs=({}, os.getpid()))
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1, initializer=init_worker, initargs=(self._job_env(), os.getpid())
        )

    def _job_env(self) -> dict[str, str]:
        """Environment every job gets from this runner's config."""
        return {"TMPDIR": self.config.tmp_dir} if self.config.tmp_dir else {}

    def _executor_of(self, slot: _Slot) -> Any:
        with self._lock:
            if slot.executor is None:
                slot.executor = self._new_executor()
                _LIVE_RUNNERS.add(self)
            return slot.executor

    def _retire(self, slot: _Slot, *, kill: bool) -> None:
        """Shut a slot's pool down (killing its worker with ``kill``); the slot's next job gets a new one."""
        with self._lock:
            executor, slot.executor = slot.executor, None
        if executor is None:
            return
        try:
            _shutdown(executor, self.pool, kill=kill)
        except Exception:  # noqa: BLE001 - a broken pool may refuse politely or not
            log.debug("shutting down a joblib worker pool failed", exc_info=True)

    def start(self) -> None:
        """Start the workers now (without waiting) so the first trials do not pay for it."""
        if self.pool == "threading":
            return
        for slot in self._slots:
            try:
                self._executor_of(slot).submit(noop)
            except Exception:  # noqa: BLE001 - warm-up is best effort; a job's start reports errors
                log.debug("joblib warm-up failed", exc_info=True)
                break
        _register_exit_hook()

    def close(self) -> None:
        """Stop the function workers (killing those still running a job, whose results are
        lost); script jobs keep running (they outlive the controller)."""
        with self._lock:
            queued = [self._functions[key] for key in self._queue if key in self._functions]
            self._queue.clear()
            busy = [slot for slot in self._slots if slot.job is not None]
            idle = [slot for slot in self._slots if slot.job is None]
        for entry in queued:
            entry.future.cancel()
        for slot in busy:
            self._retire(slot, kill=True)
        for slot in idle:  # idle workers exit by themselves, and are waited for
            with self._lock:
                executor, slot.executor = slot.executor, None
            if executor is not None:
                try:
                    _shutdown(executor, self.pool, wait=True, kill=False)
                except Exception:  # noqa: BLE001 - close must not fail
                    log.debug("closing a joblib worker pool failed", exc_info=True)
        _LIVE_RUNNERS.discard(self)
        with self._cond:
            self._cond.notify_all()

    def _kill_busy_workers(self) -> None:
        """At interpreter exit: kill the workers still running a job (nothing can wait for them)."""
        with self._lock:
            busy = [slot for slot in self._slots if slot.job is not None]
        for slot in busy:
            self._retire(slot, kill=True)

    def _dispatch(self) -> None:
        """Start queued function jobs on free slots, in the order they were submitted."""
        with self._lock:
            while self._queue:
                slot = next((s for s in self._slots if s.job is None), None)
                if slot is None:
                    return
                key = self._queue.popleft()
                entry = self._functions.get(key)
                if entry is None or not entry.future.set_running_or_notify_cancel():
                    continue  # canceled while it waited
                slot.job, entry.slot = key, slot
                self._start_on(slot, key, entry)

    def _start_on(self, slot: _Slot, key: tuple[str, str], entry: _Function) -> None:
        if self.pool == "threading":
            threading.Thread(target=self._run_in_thread, args=(slot, key, entry),
                             name=f"aid2e-joblib-{key[0][3:11]}", daemon=True).start()
            return
        for attempt in range(2):  # a broken pool (its worker died) is replaced once
            executor = self._executor_of(slot)
            try:
                inner = executor.submit(call_objective, *entry.call)
            except (concurrent.futures.BrokenExecutor, RuntimeError) as exc:
                self._retire(slot, kill=True)
                if attempt:
                    self._ended(slot, key, SubmitError(f"joblib could not start a function job: {message_line(exc)}"))
                    return
                continue
            _register_exit_hook()
            inner.add_done_callback(functools.partial(self._pool_ended, slot, key, executor))
            return

    def _run_in_thread(self, slot: _Slot, key: tuple[str, str], entry: _Function) -> None:
        try:
            outcome: Any = call_objective(*entry.call)
        except BaseException as exc:  # noqa: BLE001 - reported as the job's failure
            outcome = exc
        self._ended(slot, key, outcome)

    def _pool_ended(self, slot: _Slot, key: tuple[str, str], executor: Any,
                    inner: concurrent.futures.Future) -> None:
        """A slot's pool finished (or lost) a job: record how, free the slot, start the next job."""
        if inner.cancelled():
            outcome: Any = concurrent.futures.CancelledError()
        else:
            outcome = inner.exception() or inner.result()
        if isinstance(outcome, concurrent.futures.BrokenExecutor):
            with self._lock:
                mine = slot.executor is executor
            if mine:  # its worker died: the slot's next job gets a new one
                self._retire(slot, kill=True)
        self._ended(slot, key, outcome)

    def _ended(self, slot: _Slot, key: tuple[str, str], outcome: Any) -> None:
        """A job's call returned ``outcome`` (or raised it): complete its future, free its slot
        (unless a cancel already gave the slot to another job), start what waits."""
        with self._lock:
            entry = self._functions.get(key)
            if slot.job == key:
                slot.job = None
        if entry is not None and not entry.future.done():
            if isinstance(outcome, BaseException):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result(outcome)
        self._dispatch()
        self._notify()

    # ------------------------------------------------------------ submit
    def submit(self, request: JobRequest) -> JobHandle:
        if isinstance(request.job, FunctionJob):
            return self._submit_function(request)
        if isinstance(request.job, ScriptJob):
            return self._submit_script(request)
        kind = getattr(request.job, "kind", type(request.job).__name__)
        raise SubmitError(f"the joblib backend cannot run {kind!r} jobs (it runs function and script jobs)")

    def _submit_function(self, request: JobRequest) -> JobHandle:
        native_id = f"fn-{uuid.uuid4().hex}"
        handle = JobHandle(backend=self.name, native_id=native_id, workdir=request.workdir,
                           submitted_at=time.time(), extra={"kind": "function"})
        key = _key(handle)
        entry = _Function(future=concurrent.futures.Future(),
                          call=(request.job.function, request.job.call_style, dict(request.parameters)))
        with self._lock:
            self._functions[key] = entry
            self._final.pop(key, None)
            self._canceled.discard(key)
            self._queue.append(key)
        entry.future.add_done_callback(self._notify)
        self._dispatch()
        return handle

    def _submit_script(self, request: JobRequest) -> JobHandle:
        if self._job_env():
            request = attrs.evolve(request, job=attrs.evolve(request.job, env={**self._job_env(), **request.job.env}))
        handle = detached.launch(request, self.name, on_end=self._notify)
        with self._lock:
            self._scripts.add(_key(handle))
        return handle

    def _notify(self, *_args: object) -> None:
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------ poll / result
    def poll(self, handles: Sequence[JobHandle]) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        for handle in handles:
            try:
                states[handle.native_id] = self._state(handle)
            except Exception as exc:  # noqa: BLE001 - one bad handle must not hide the others
                log.warning("cannot poll joblib job %s: %s", handle.native_id, message_line(exc))
                states[handle.native_id] = JobState.FAILED
        return states

    def _state(self, handle: JobHandle) -> JobState:
        key = _key(handle)
        with self._lock:
            if key in self._canceled:
                return JobState.CANCELED
            final = self._final.get(key)
            if final is not None:
                return final.state
            if _kind(handle) == "function":
                entry = self._functions.get(key)
                if entry is None:
                    return JobState.FAILED
                if not entry.future.done():
                    return JobState.ACTIVE if entry.future.running() else JobState.QUEUED
                return self._function_result(key, entry).state
        return detached.state(handle)

    def result(self, handle: JobHandle) -> JobResult:
        key = _key(handle)
        try:
            with self._lock:
                if key in self._canceled:
                    return self._final.get(key) or JobResult(state=JobState.CANCELED, message="canceled")
                if key in self._final:
                    return self._final[key]
                if _kind(handle) == "function":
                    entry = self._functions.get(key)
                    if entry is None:
                        return JobResult(  # an infrastructure failure: config max_retries runs it again
                            state=JobState.FAILED, retryable=True,
                            message=f"function job {handle.native_id} was lost with its controller "
                                    "(function jobs run in the controller's workers and cannot outlive it)",
                        )
                    if not entry.future.done():
                        return JobResult(state=JobState.FAILED,
                                         message=f"function job {handle.native_id} has not ended yet")
                    return self._function_result(key, entry)
            return detached.result(handle)
        except Exception as exc:  # noqa: BLE001 - never raise for one bad handle
            return JobResult(state=JobState.FAILED,
                             message=f"cannot read the result of job {handle.native_id}: {message_line(exc)}")

    def _function_result(self, key: tuple[str, str], entry: _Function) -> JobResult:
        future = entry.future
        if future.cancelled():
            result = JobResult(state=JobState.CANCELED, message="canceled")
        else:
            exc = future.exception()
            if exc is None:
                result = result_of_call(future.result())
            else:
                result = JobResult(state=JobState.FAILED,
                                   message=f"function job failed in the joblib worker: "
                                           f"{type(exc).__name__}: {exc}")
        self._final[key] = result
        return result

    # ------------------------------------------------------------ cancel
    def cancel(self, handle: JobHandle) -> None:
        """Stop a job. A function job waiting for a slot never starts; a running one's worker is
        killed (its slot gets a new one). A function running in a thread cannot be stopped: it is
        given up and runs on until it returns (see :meth:`cancel_stops`). A script job's process
        group is sent SIGTERM; its launcher SIGKILLs what is left after
        :data:`aid2e.jobs.launch.KILL_GRACE` seconds, whether or not this process still runs
        (:func:`aid2e.jobs.detached.cancel`)."""
        if _kind(handle) == "function":
            self._cancel_function(handle)
        elif detached.cancel(handle):
            self._notify()

    def cancel_stops(self, handle: JobHandle) -> bool:
        """False for function jobs of the threading pool (a thread cannot be stopped)."""
        return not (self.pool == "threading" and _kind(handle) == "function")

    def _cancel_function(self, handle: JobHandle) -> None:
        key = _key(handle)
        with self._lock:
            entry = self._functions.get(key)
            if entry is None or key in self._canceled or entry.future.done():
                return  # unknown, or it ended first: its own final state stands
            self._canceled.add(key)
            message = "canceled"
            slot = entry.slot
            if entry.future.cancel():  # still waiting for a slot: it never starts
                slot = None
            elif self.pool == "threading":
                message = "canceled (its thread cannot be stopped: it runs on until the function returns)"
                log.warning("function job %s runs in a thread, which cannot be stopped: it is given up and "
                            "runs on until it returns", handle.native_id)
            self._final[key] = JobResult(state=JobState.CANCELED, message=message)
            if slot is not None and slot.job == key:
                slot.job = None  # the slot runs the next job (on a new worker for process pools)
                if self.pool != "threading":
                    self._retire(slot, kill=True)
                entry.future.set_exception(concurrent.futures.CancelledError(message))
        self._dispatch()
        self._notify()

    # ------------------------------------------------------------ wait
    def wait(self, handles: Sequence[JobHandle], timeout: float) -> bool:
        """True as soon as one of ``handles`` is in a final state; False after ``timeout`` seconds."""
        if not handles:
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            foreign = any(
                _key(h) not in self._scripts and _key(h) not in self._functions for h in handles
            )
            while True:
                states = self.poll(handles)
                if any(state.is_final for state in states.values()):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, FOREIGN_POLL) if foreign else remaining)
