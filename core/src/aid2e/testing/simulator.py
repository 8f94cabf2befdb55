"""A simulated backend with its own clock: the trial loop and its policies tested in milliseconds.

Like Ax's ``BackendSimulator``: nothing runs. Each submitted job follows a plan — seconds queued,
seconds running, and the result it ends with — on a :class:`SimulatedClock` that only moves when
the loop waits on the backend (``wait`` jumps to the next job's end) or sleeps. Hours of a
campaign take milliseconds, and a test asserts exactly what happened: every submission and
cancel is recorded on the :class:`SimulatedCluster` (the simulated batch system), which a second
backend can share to follow the first one's jobs, as a restarted controller does.

Faults to inject: submissions refused (``fail_submissions``), polls that raise
(``fail_polls``), and through the plan jobs that vanish (a retryable failure, like a lost node),
fail, report infeasible designs, or never end (``run=math.inf``). A plan whose result is
:func:`execute` runs each job for real, once, when its simulated run ends: the conformance suite
runs this backend so (core/tests/test_simulator.py).

Example::

    clock = SimulatedClock()
    backend = SimulatedBackend(clock=clock, capacity=4,
                               plan=lambda request: SimulatedJob(run=3600, metrics={"loss": 1.0}))
    handle = backend.submit(request)
    backend.wait([handle], timeout=7200)   # returns True at once; clock.time() advanced by 3600 s
"""

from __future__ import annotations

import itertools
import math
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import define, field, frozen

from ..backend import Backend
from ..errors import SubmitError
from ..jobs.function import run_function_job
from ..jobs.script import launcher_argv, prepare_workdir, read_result
from ..types import FunctionJob, JobHandle, JobRequest, JobResult, JobState, Measurement, ScriptJob

#: Wall-clock time a simulated campaign starts at (2026-01-01T00:00:00Z).
EPOCH = 1_767_225_600.0


class SimulatedClock:
    """A clock that moves only when told to (implements :class:`aid2e.clock.Clock`)."""

    def __init__(self, start: float = EPOCH) -> None:
        self._start = start
        self._elapsed = 0.0

    def time(self) -> float:
        return self._start + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (never back)."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"a simulated clock moves forward by a finite time, got {seconds!r}")
        self._elapsed += seconds


@frozen(kw_only=True)
class SimulatedJob:
    """How one simulated job goes: ``queue`` seconds waiting, ``run`` seconds running
    (``math.inf``: it never ends), then ``result`` (a :class:`JobResult`, or a function of the
    request giving one). Without ``result`` it completes with ``metrics`` (numbers or
    ``(mean, sem)``), or fails when ``vanish`` (a retryable failure, like a lost node)."""

    queue: float = field(default=0.0, validator=lambda _, a, v: _check_seconds(a.name, v, inf_ok=False))
    run: float = field(default=1.0, validator=lambda _, a, v: _check_seconds(a.name, v, inf_ok=True))
    result: JobResult | Callable[[JobRequest], JobResult] | None = None
    metrics: Mapping[str, Any] = field(factory=dict)
    vanish: bool = False

    def outcome(self, request: JobRequest) -> JobResult:
        if self.result is not None:
            return self.result(request) if callable(self.result) else self.result
        if self.vanish:
            return JobResult(state=JobState.FAILED, message="the job vanished (its node was lost)", retryable=True)
        return JobResult(state=JobState.COMPLETED, metrics={k: _measurement(v) for k, v in self.metrics.items()})


def execute(request: JobRequest) -> JobResult:
    """Run ``request``'s job for real, here and now, and return how it ended: a plan's ``result``
    for a test that wants real results on simulated time (``SimulatedJob(result=execute)``; the
    conformance suite runs the backend so). It runs when the simulated job ends, once; a job
    canceled before then never runs. A function is called in this process; a script is prepared
    and run by the launcher, as every backend runs it, and what it leaves is read as untrusted."""
    if isinstance(request.job, FunctionJob):
        return run_function_job(request.job, request.parameters)
    if isinstance(request.job, ScriptJob):
        workdir = prepare_workdir(request)
        subprocess.run(launcher_argv(workdir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return read_result(workdir, token=request.token)
    return JobResult(state=JobState.FAILED, message=f"the simulated backend cannot run {request.job.kind!r} jobs")


def _check_seconds(name: str, value: Any, *, inf_ok: bool) -> None:
    """A plan's duration is a number of seconds, at least 0 (``run`` may be ``math.inf``)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and (0 <= value < math.inf or inf_ok and value == math.inf)):
        never = " (math.inf: it never ends)" if inf_ok else ""
        raise ValueError(f"SimulatedJob {name} must be seconds >= 0{never}, got {value!r}")


def _measurement(value: Any) -> Measurement:
    if isinstance(value, Measurement):
        return value
    if isinstance(value, tuple):
        return Measurement(mean=float(value[0]), sem=None if value[1] is None else float(value[1]))
    return Measurement(mean=float(value))


@define
class _Job:
    request: JobRequest
    plan: SimulatedJob
    submitted_at: float
    canceled_at: float | None = None
    _outcome: JobResult | None = None

    @property
    def starts_at(self) -> float:
        return self.submitted_at + self.plan.queue

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.plan.run

    def state(self, now: float) -> JobState:
        if self.canceled_at is not None:
            return JobState.CANCELED if self.canceled_at < self.ends_at else self._final()
        if now >= self.ends_at:
            return self._final()
        return JobState.ACTIVE if now >= self.starts_at else JobState.QUEUED

    def _final(self) -> JobState:
        return self.outcome().state

    def outcome(self) -> JobResult:
        """The planned result, computed once (a plan that runs the job runs it once, and poll and
        result agree even when the plan draws its outcome at random)."""
        if self._outcome is None:
            self._outcome = self.plan.outcome(self.request)
        return self._outcome

    def end_time(self) -> float:
        """When the job reaches its final state (canceled: at the cancel)."""
        if self.canceled_at is not None:
            return min(self.canceled_at, self.ends_at)
        return self.ends_at


class SimulatedCluster:
    """The simulated batch system: its jobs, its clock, and a record of every call.

    * ``submissions``: every accepted request, in order (a test checks nothing ran twice);
    * ``refused``: trial indexes whose submission was refused;
    * ``cancels``: native ids canceled, in order;
    * ``fail_submissions``: refuse this many next submissions, or those of these trial indexes;
    * ``fail_polls``: the next this many polls raise.
    """

    def __init__(self, clock: SimulatedClock | None = None) -> None:
        self.clock = clock if clock is not None else SimulatedClock()
        self.jobs: dict[str, _Job] = {}
        self.submissions: list[JobRequest] = []
        self.refused: list[int] = []
        self.cancels: list[str] = []
        self.fail_submissions: int | set[int] = 0
        self.fail_polls = 0
        self._ids = itertools.count(1)

    def submitted_trials(self) -> list[int]:
        """Trial indexes of every accepted submission, in order."""
        return [request.trial_index for request in self.submissions]

    def _refuses(self, request: JobRequest) -> bool:
        if isinstance(self.fail_submissions, set):
            return request.trial_index in self.fail_submissions
        if self.fail_submissions > 0:
            self.fail_submissions -= 1
            return True
        return False


class SimulatedBackend(Backend):
    """A backend whose jobs follow a plan on a simulated clock (see the module docstring).

    ``plan(request)`` gives each job's :class:`SimulatedJob` (default: one second, completing
    with ``metrics(parameters)`` when given, else no metrics). Backends built on the same
    ``cluster`` see the same jobs.
    """

    name = "simulated"
    kinds = frozenset({"function", "script"})
    poll_interval = 1.0

    def __init__(self, *, cluster: SimulatedCluster | None = None, clock: SimulatedClock | None = None,
                 capacity: int = 4, plan: Callable[[JobRequest], SimulatedJob] | None = None,
                 metrics: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> None:
        if cluster is None:
            cluster = SimulatedCluster(clock)
        elif clock is not None and clock is not cluster.clock:
            raise ValueError("a backend on a cluster uses the cluster's clock")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"SimulatedBackend capacity must be a whole number >= 1, got {capacity!r}")
        self.cluster = cluster
        self.clock = cluster.clock
        self._capacity = capacity
        self._plan = plan
        self._metrics = metrics

    @property
    def capacity(self) -> int:
        return self._capacity

    def plan(self, request: JobRequest) -> SimulatedJob:
        """What the job of ``request`` does on the simulated clock: the ``plan`` given, else it
        completes after one second with ``metrics(parameters)`` (or no metrics)."""
        if self._plan is not None:
            return self._plan(request)
        values = self._metrics(request.parameters) if self._metrics is not None else {}
        return SimulatedJob(metrics=dict(values))

    # ------------------------------------------------------------ the contract
    def submit(self, request: JobRequest) -> JobHandle:
        if self.cluster._refuses(request):
            self.cluster.refused.append(request.trial_index)
            raise SubmitError(f"simulated refusal of trial {request.trial_index}'s job")
        native_id = str(next(self.cluster._ids))
        self.cluster.jobs[native_id] = _Job(request=request, plan=self.plan(request), submitted_at=self.clock.time())
        self.cluster.submissions.append(request)
        return self._handle(native_id)

    def _handle(self, native_id: str) -> JobHandle:
        job = self.cluster.jobs[native_id]
        extra = {"token": job.request.token} if job.request.token else {}
        return JobHandle(backend=self.name, native_id=native_id, workdir=job.request.workdir,
                         submitted_at=job.submitted_at, extra=extra)

    def poll(self, handles: Sequence[JobHandle]) -> dict[str, JobState]:
        if self.cluster.fail_polls > 0:
            self.cluster.fail_polls -= 1
            raise RuntimeError("simulated batch system outage")
        now = self.clock.time()
        return {h.native_id: job.state(now) if (job := self.cluster.jobs.get(h.native_id)) else JobState.FAILED
                for h in handles}

    def result(self, handle: JobHandle) -> JobResult:
        job = self.cluster.jobs.get(handle.native_id)
        if job is None:  # like a batch system that forgot the job: FAILED, and worth another attempt
            return JobResult(state=JobState.FAILED, retryable=True,
                             message=f"the simulated batch system has no job {handle.native_id}")
        state = job.state(self.clock.time())
        if state is JobState.CANCELED:
            return JobResult(state=JobState.CANCELED, message="canceled")
        if not state.is_final:
            raise RuntimeError(f"job {handle.native_id} has not ended")
        return job.outcome()

    def cancel(self, handle: JobHandle) -> None:
        job = self.cluster.jobs.get(handle.native_id)
        self.cluster.cancels.append(handle.native_id)
        if job is not None and job.canceled_at is None and not job.state(self.clock.time()).is_final:
            job.canceled_at = self.clock.time()

    def wait(self, handles: Sequence[JobHandle], timeout: float) -> bool:
        """Jump to the first end among ``handles`` within ``timeout`` (True), else by ``timeout``."""
        now = self.clock.time()
        ends = [job.end_time() if (job := self.cluster.jobs.get(h.native_id)) else now for h in handles]
        upcoming = [end for end in ends if end > now]
        if any(end <= now for end in ends):
            return True
        first = min(upcoming, default=math.inf)
        if first < math.inf and first - now <= timeout:
            self.clock.advance(first - now)
            return True
        if timeout == math.inf:
            raise RuntimeError("waiting without a timeout on simulated jobs that never end would wait forever")
        self.clock.advance(max(0.0, timeout))
        return False

    def outlives_controller(self, handle: JobHandle) -> bool:
        return True  # a batch system's job

    def adopt(self, request: JobRequest) -> JobHandle | None:
        for native_id, job in self.cluster.jobs.items():
            if request.token and job.request.token == request.token:
                return self._handle(native_id)
        return None


__all__ = ["EPOCH", "SimulatedBackend", "SimulatedClock", "SimulatedCluster", "SimulatedJob", "execute"]
