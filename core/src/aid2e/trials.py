"""The trial book: the one owner of every trial's state and of the jobs in flight.

A trial's :class:`TrialRecord` (status, attempt, token, parameters, result or reason) is what is
saved and what ``AxScheduler.trials`` shows. The jobs the loop is following are :class:`JobEntry`
rows of the book, keyed by trial and job name, and carry what only the loop needs: when the job
was first seen running (``trial_timeout`` counts from there) and why aid2e canceled it, if it
did. A trial owns its jobs: today one (name ``""``); trials made of stages own several.

Nothing else keeps trial state: the loop asks the book, Ax is told what the book decided, and
the state files are written from the book's records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from .types import JobHandle, Measurement

#: A trial record's statuses; RUNNING until it ends one of the other three ways.
STATUSES = ("RUNNING", "COMPLETED", "FAILED", "ABANDONED")


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
    ended_at: float | None = None
    attempts: int = 1
    token: str = ""
    penalized: bool = False  # COMPLETED with config 'penalty' after its job failed (message says why)


@define(kw_only=True)
class JobEntry:
    """A job the loop is following: whose it is and what the loop knows of it."""

    trial: int
    handle: JobHandle
    name: str = ""  # which of its trial's jobs ("" for a trial's one job)
    active_since: float | None = None  # wall time the first poll saw it ACTIVE (trial_timeout counts from it)
    cancel_reason: str | None = None  # aid2e canceled it (its trial is abandoned with this reason)
    timed_out: bool = False  # aid2e canceled it for exceeding trial_timeout


def new_token() -> str:
    """A fresh attempt token."""
    return uuid.uuid4().hex


class TrialBook:
    """Every trial's record (``records``), the jobs in flight, and the trials waiting to be submitted.

    A RUNNING trial is in exactly one of three places: following its job (``jobs``), waiting
    for its current attempt to be submitted (``awaiting``), or neither — left for a resumed
    controller (its job outlives this one, or it runs again on resume).
    """

    def __init__(self, records: Mapping[int, TrialRecord] | None = None) -> None:
        self.records: dict[int, TrialRecord] = dict(records or {})
        self._jobs: dict[tuple[int, str], JobEntry] = {}
        self._awaiting: dict[int, None] = {}  # ordered set: trials to submit, oldest first

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

    def awaiting(self) -> list[int]:
        """Trials whose current attempt is to be submitted, oldest first."""
        return list(self._awaiting)

    def following(self, index: int) -> bool:
        """Whether a job of trial ``index`` is in flight."""
        return any(key[0] == index for key in self._jobs)

    @property
    def in_flight(self) -> int:
        """Trials holding a slot: following a job or waiting for their submission."""
        return len({key[0] for key in self._jobs} | set(self._awaiting))

    def unfollowed_running(self) -> Iterator[TrialRecord]:
        """RUNNING trials neither followed nor waiting (as a loaded campaign's are)."""
        for index, record in self.records.items():
            if record.status == "RUNNING" and not self.following(index) and index not in self._awaiting:
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
    def open(self, index: int, parameters: Mapping[str, Any]) -> TrialRecord:
        """A new RUNNING trial waiting for its first submission."""
        record = TrialRecord(index=index, parameters=dict(parameters), token=new_token())
        self.records[index] = record
        self._awaiting[index] = None
        return record

    def new_attempt(self, index: int, *, submit: bool = True) -> TrialRecord:
        """Make trial ``index`` a new attempt: a new token and no job yet (save it before
        submitting, so the attempt's token is on disk before its job exists). ``submit``: the
        loop submits it (else a resumed controller will)."""
        record = self.records[index]
        self._drop_jobs(index)
        record.attempts += 1
        record.token, record.handle, record.ended_at = new_token(), None, None
        if submit:
            self._awaiting[index] = None
        return record

    def await_submission(self, index: int) -> None:
        """Trial ``index`` (RUNNING, no job in flight) is to be submitted by the loop."""
        self._awaiting[index] = None

    def submitted(self, index: int, handle: JobHandle, name: str = "") -> JobEntry:
        """Trial ``index``'s job was submitted (or found again): follow it."""
        self._awaiting.pop(index, None)
        self.records[index].handle = handle
        entry = JobEntry(trial=index, handle=handle, name=name)
        self._jobs[(index, name)] = entry
        return entry

    def follow(self, index: int) -> JobEntry:
        """Follow trial ``index``'s saved job again (a resumed campaign, or a job left running)."""
        record = self.records[index]
        assert record.handle is not None, "follow() needs a saved handle"
        return self.submitted(index, record.handle)

    def unfollow(self, entry: JobEntry, *, keep_handle: bool = True) -> None:
        """Stop following a job without ending its trial: it is left running for a resumed
        controller (``keep_handle``), or it was stopped and the trial runs again on resume."""
        self._jobs.pop((entry.trial, entry.name), None)
        if not keep_handle:
            self.records[entry.trial].handle = None

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
        self._awaiting.pop(index, None)
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


__all__ = ["STATUSES", "JobEntry", "TrialBook", "TrialRecord", "new_token"]
