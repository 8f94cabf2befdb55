"""The trial book: the one owner of every trial's state and of the jobs in flight.

A trial's :class:`TrialRecord` (status, attempt, token, parameters, result or reason) is what is
saved and what ``AxScheduler.trials`` shows. A trial runs one job (its record's ``handle``,
``attempts`` and ``token`` are that job's; the book calls it ``""``), or, made of stages, one
:class:`JobRecord` per job of its workflow, in its record's ``jobs`` (keyed ``stage/job``).
The jobs the loop is following are :class:`JobEntry` rows of the book, keyed by trial and job
key, and carry what only the loop needs: the backend the job runs on, when the job was first
seen running (``trial_timeout`` counts from there) and why aid2e canceled it, if it did.

Nothing else keeps trial state: the loop asks the book, Ax is told what the book decided, and
the state files are written from the book's records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from . import state
from .types import JobHandle, Measurement

#: A trial record's statuses; RUNNING until it ends one of the other three ways.
STATUSES = ("RUNNING", "COMPLETED", "FAILED", "ABANDONED")
#: A workflow job's statuses (defined with the state format): WAITING for its inputs (or a slot),
#: RUNNING (saved just before its submission, then with its handle), then how it ended.
JOB_STATUSES = state.JOB_STATUSES


@define(kw_only=True)
class JobRecord:
    """One job of a trial made of stages: where it runs and how it ended.

    As for a trial's one job, a RUNNING job without a handle was saved just before its
    submission, and ``token`` names its current attempt. ``output`` is what it gave (a JSON
    value, or None), passed to the jobs after it.
    """

    stage: str
    name: str
    fan_out: dict[str, Any] = field(factory=dict)
    status: str = "WAITING"
    handle: JobHandle | None = None
    attempts: int = 1
    token: str = ""
    message: str = ""
    output: Any = None
    started_at: float | None = None
    running_at: float | None = None  # when a poll first saw its current attempt running (queue wait before)
    ended_at: float | None = None

    @property
    def key(self) -> str:
        """``stage/job``: the job's name in its trial (and its directory under the trial's)."""
        return f"{self.stage}/{self.name}"


@define(kw_only=True)
class TrialRecord:
    """aid2e's own record of one trial: where its job is and how it ended.

    A RUNNING record without a handle is a trial saved just before its job was submitted.
    ``token`` names the current attempt (saved before its submission): a backend accepts only
    files written under it, so a stale directory is never taken for this attempt's result.
    """

    index: int
    parameters: dict[str, Any]
    status: str = "RUNNING"  # RUNNING | COMPLETED | FAILED | ABANDONED
    handle: JobHandle | None = None
    message: str = ""
    metrics: dict[str, Measurement] = field(factory=dict)
    started_at: float = field(factory=time.time)
    running_at: float | None = None  # when a poll first saw its current attempt's job running
    ended_at: float | None = None
    attempts: int = 1
    token: str = ""
    penalized: bool = False  # COMPLETED with config 'penalty' after its job failed (message says why)
    jobs: dict[str, JobRecord] = field(factory=dict)  # a trial made of stages: its jobs, by key
    #: The Ax generation that made it: ``at`` (wall time it began), ``seconds``, ``size`` (trials
    #: it made), ``node`` (Ax's generation node, e.g. Sobol or MBM); None for trials given by hand.
    generation: dict[str, Any] | None = None


@define(kw_only=True)
class JobEntry:
    """A job the loop is following: whose it is and what the loop knows of it."""

    trial: int
    handle: JobHandle
    name: str = ""  # which of its trial's jobs: a JobRecord's key ("" for a trial's one job)
    backend: Any = None  # the backend it runs on (None: the scheduler's)
    active_since: float | None = None  # wall time the first poll saw it ACTIVE (trial_timeout counts from it)
    cancel_reason: str | None = None  # aid2e canceled it (its trial is abandoned with this reason)
    timed_out: bool = False  # aid2e canceled it for exceeding trial_timeout


def new_token() -> str:
    """A fresh attempt token."""
    return uuid.uuid4().hex


class TrialBook:
    """Every trial's record (``records``), the jobs in flight, and the jobs waiting to be submitted.

    A job is named by ``(trial, key)``: key ``""`` for a trial's one job, a :class:`JobRecord`'s
    key for a job of a workflow. A RUNNING trial is following jobs (``jobs``), has jobs waiting
    for their submission (``awaiting``), or neither — left for a resumed controller (its jobs
    outlive this one, or run again on resume).
    """

    def __init__(self, records: Mapping[int, TrialRecord] | None = None) -> None:
        self.records: dict[int, TrialRecord] = dict(records or {})
        self._jobs: dict[tuple[int, str], JobEntry] = {}
        self._awaiting: dict[tuple[int, str], None] = {}  # ordered set: jobs to submit, oldest first

    # ------------------------------------------------------------ queries
    def __getitem__(self, index: int) -> TrialRecord:
        return self.records[index]

    def __contains__(self, index: object) -> bool:
        return index in self.records

    def jobs(self) -> list[JobEntry]:
        """The jobs in flight, oldest first."""
        return list(self._jobs.values())

    def handles(self) -> list[JobHandle]:
        return [entry.handle for entry in self._jobs.values()]

    def awaiting(self) -> list[tuple[int, str]]:
        """Jobs ``(trial, key)`` whose current attempt is to be submitted, oldest first."""
        return list(self._awaiting)

    def is_awaiting(self, index: int, key: str = "") -> bool:
        return (index, key) in self._awaiting

    def following(self, index: int) -> bool:
        """Whether a job of trial ``index`` is in flight."""
        return any(key[0] == index for key in self._jobs)

    def entry(self, index: int, key: str = "") -> JobEntry | None:
        return self._jobs.get((index, key))

    @property
    def in_flight(self) -> int:
        """RUNNING trials holding a slot: following a job or having one waiting for its submission."""
        held = {key[0] for key in self._jobs} | {key[0] for key in self._awaiting}
        return sum(1 for index in held if self.records[index].status == "RUNNING")

    def on_backend(self, backend: Any) -> int:
        """Jobs in flight on ``backend`` (None: the scheduler's)."""
        return sum(1 for entry in self._jobs.values() if entry.backend is backend)

    def unfollowed_running(self) -> Iterator[TrialRecord]:
        """RUNNING trials neither followed nor waiting (as a loaded campaign's are)."""
        waiting = {key[0] for key in self._awaiting}
        for index, record in self.records.items():
            if record.status == "RUNNING" and not self.following(index) and index not in waiting:
                yield record

    def counts(self) -> dict[str, int]:
        """Trials by status, and ``PENALIZED`` (completed with the penalty; counted in COMPLETED too)."""
        counts = dict.fromkeys(STATUSES, 0)
        counts["PENALIZED"] = 0
        for record in self.records.values():
            counts[record.status] = counts.get(record.status, 0) + 1
            counts["PENALIZED"] += record.penalized
        return counts

    # ------------------------------------------------------------ changes
    def open(self, index: int, parameters: Mapping[str, Any], jobs: Mapping[str, JobRecord] | None = None,
             generation: Mapping[str, Any] | None = None) -> TrialRecord:
        """A new RUNNING trial: waiting for its job's first submission, or made of the workflow
        ``jobs`` (all WAITING: :meth:`await_submission` queues those whose inputs exist)."""
        record = TrialRecord(index=index, parameters=dict(parameters), token=new_token(), jobs=dict(jobs or {}),
                             generation=dict(generation) if generation is not None else None)
        self.records[index] = record
        if not record.jobs:
            self._awaiting[(index, "")] = None
        return record

    def new_attempt(self, index: int, *, submit: bool = True) -> TrialRecord:
        """Make trial ``index`` a new attempt: a new token and no job yet (save it before
        submitting, so the attempt's token is on disk before its job exists). ``submit``: the
        loop submits it (else a resumed controller will)."""
        record = self.records[index]
        self._drop_jobs(index)
        record.attempts += 1
        record.token, record.handle, record.running_at, record.ended_at = new_token(), None, None, None
        if submit:
            self._awaiting[(index, "")] = None
        return record

    def new_job_attempt(self, index: int, key: str, *, submit: bool = True) -> JobRecord:
        """Make job ``key`` of trial ``index`` a new attempt (as :meth:`new_attempt` for a trial's one job)."""
        job = self.records[index].jobs[key]
        self._jobs.pop((index, key), None)
        job.attempts += 1
        job.status, job.token, job.handle, job.running_at, job.ended_at = "RUNNING", new_token(), None, None, None
        if submit:
            self._awaiting[(index, key)] = None
        return job

    def await_submission(self, index: int, key: str = "") -> None:
        """Job ``key`` of trial ``index`` (RUNNING, not in flight) is to be submitted by the loop."""
        self._awaiting[(index, key)] = None

    def submitted(self, index: int, handle: JobHandle, name: str = "", backend: Any = None) -> JobEntry:
        """Job ``name`` of trial ``index`` was submitted (or found again) on ``backend``: follow it."""
        self._awaiting.pop((index, name), None)
        record = self.records[index]
        if name:
            record.jobs[name].handle = handle
            record.jobs[name].status = "RUNNING"
        else:
            record.handle = handle
        entry = JobEntry(trial=index, handle=handle, name=name, backend=backend)
        self._jobs[(index, name)] = entry
        return entry

    def follow(self, index: int, backend_of: Any = None) -> list[JobEntry]:
        """Follow trial ``index``'s saved jobs again (a resumed campaign, or jobs left running):
        its one job, or each RUNNING job of its workflow that has a handle (on ``backend_of(job)``)."""
        record = self.records[index]
        if not record.jobs:
            assert record.handle is not None, "follow() needs a saved handle"
            return [self.submitted(index, record.handle)]
        return [self.submitted(index, job.handle, job.key, backend_of(job) if backend_of else None)
                for job in record.jobs.values() if job.status == "RUNNING" and job.handle is not None]

    def unfollow(self, entry: JobEntry, *, keep_handle: bool = True) -> None:
        """Stop following a job without ending its trial: it is left running for a resumed
        controller (``keep_handle``), or it was stopped and runs again on resume."""
        self._jobs.pop((entry.trial, entry.name), None)
        if not keep_handle:
            record = self.records[entry.trial]
            if entry.name:
                record.jobs[entry.name].handle = None
            else:
                record.handle = None

    def job_ended(self, entry: JobEntry) -> None:
        """A followed job reached a final state (its trial is decided next)."""
        self._jobs.pop((entry.trial, entry.name), None)

    def close(self, index: int, status: str, *, message: str | None = None,
              metrics: Mapping[str, Measurement] | None = None, at: float | None = None,
              penalized: bool = False) -> TrialRecord:
        """End trial ``index`` as COMPLETED, FAILED or ABANDONED (``message`` None: keep the
        record's, e.g. what an earlier attempt's failure was)."""
        assert status in STATUSES and status != "RUNNING", status
        record = self.records[index]
        self._drop_jobs(index)
        for key in [key for key in self._awaiting if key[0] == index]:
            del self._awaiting[key]
        record.status, record.penalized = status, penalized
        if message is not None:
            record.message = message
        if metrics is not None:
            record.metrics = dict(metrics)
        if record.ended_at is None:
            record.ended_at = time.time() if at is None else at
        return record

    def _drop_jobs(self, index: int) -> None:
        for key in [key for key in self._jobs if key[0] == index]:
            del self._jobs[key]

    def stop_following(self) -> None:
        """Forget the jobs in flight and the trials waiting (a new run starts from the records)."""
        self._jobs.clear()
        self._awaiting.clear()


__all__ = ["JOB_STATUSES", "STATUSES", "JobEntry", "JobRecord", "TrialBook", "TrialRecord", "new_token"]
