"""The execution-backend protocol every runner implements (joblib, PSI/J, PanDA, third parties).

A backend runs :class:`~aid2e.types.JobRequest` s of the kinds it lists in ``kinds`` and reports
on them through :class:`~aid2e.types.JobHandle` s, which hold everything needed to find a job
again after the controller restarts. The conformance suite in :mod:`aid2e.testing` checks all of it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from typing import ClassVar

from .types import JobHandle, JobRequest, JobResult, JobState


class Backend(abc.ABC):
    """Base class of execution backends (the "runner" passed to ``AxScheduler``).

    Subclasses set ``name`` and ``kinds`` and implement :meth:`submit`, :meth:`poll`,
    :meth:`result` and :meth:`cancel`. Everything else has working defaults.
    """

    #: The backend's registered name (``BackendInfo.name``); its handles carry it (``JobHandle.backend``).
    name: ClassVar[str] = ""
    #: Other ``JobHandle.backend`` names whose jobs this backend can follow: names it had in
    #: older versions (saved campaigns carry them), or a sibling on the same system.
    follows: ClassVar[frozenset[str]] = frozenset()
    #: Job kinds this backend runs natively; others are adapted (see ``aid2e_job_adapters``).
    kinds: ClassVar[frozenset[str]] = frozenset({"script"})
    #: Longest time between two polls of running jobs (the scheduler also polls at least every
    #: ``monitoring_interval`` seconds, and whenever :meth:`wait` reports a possible change).
    poll_interval: float = 1.0

    @property
    def capacity(self) -> int:
        """How many jobs this backend should have in flight at once."""
        return 1

    def start(self) -> None:
        """Get ready to run jobs (start workers, connect); called before the first submit."""

    def status(self) -> str:
        """One line for ``aid2e validate``: whether this backend can take jobs now (``ready, ...``
        or ``not ready: ...`` saying what to fix). Cheap and safe on a runner never started: no
        job is submitted, at most one short query of the batch system; never raises. The
        default knows only how many jobs it runs at once."""
        return f"ready, {self.capacity} job(s) at once"

    @abc.abstractmethod
    def submit(self, request: JobRequest) -> JobHandle:
        """Start ``request`` and return its handle; raise :class:`~aid2e.errors.SubmitError` if refused."""

    @abc.abstractmethod
    def poll(self, handles: Sequence[JobHandle]) -> dict[str, JobState]:
        """States of many jobs in one call, keyed by ``native_id``.

        Must accept handles made by an earlier instance (a restarted controller).
        """

    @abc.abstractmethod
    def result(self, handle: JobHandle) -> JobResult:
        """How a job in a final state ended (metrics, or the reason it failed)."""

    @abc.abstractmethod
    def cancel(self, handle: JobHandle) -> None:
        """Stop a job; afterwards it polls as CANCELED (or its final state, if it had ended)."""

    def wait(self, handles: Sequence[JobHandle], timeout: float) -> bool:
        """Block until some job in ``handles`` may have ended (return True) or ``timeout``
        seconds passed (return False). Must be cheap: no batch-system calls.

        The default sleeps up to ``poll_interval`` and returns False, so such a backend is
        polled every ``poll_interval`` seconds; backends whose jobs can signal their end
        override it so the scheduler refills a slot the moment a job ends.
        """
        if handles:
            time.sleep(max(0.0, min(timeout, self.poll_interval)))
        return False

    def outlives_controller(self, handle: JobHandle) -> bool:
        """Whether the job keeps running, and can be followed again by a resumed scheduler, when
        the controller process exits. True for batch-system jobs and detached processes; the
        default, False, makes the scheduler wait for the job after a Ctrl-C instead of leaving it.
        """
        return False

    def cancel_stops(self, handle: JobHandle) -> bool:
        """Whether :meth:`cancel` stops the job's work, rather than only giving it up. The
        default, True, is what a backend should do; False is for work that cannot be stopped
        (a function running in a thread runs on until it returns), so messages stay honest.
        """
        return True

    def adopt(self, request: JobRequest) -> JobHandle | None:
        """Find the job an earlier controller submitted for ``request`` but died before it
        recorded the handle (it saves each trial just before submitting it). Return its handle,
        or None if no such job exists, in which case the trial is submitted again.

        The default knows no way to look and returns None; backends that can find a job by its
        trial directory or its name override it, so a job never runs twice.
        """
        return None

    def close(self) -> None:
        """Release resources. Jobs that can outlive the controller (scripts) keep running."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def can_follow(runner: object, handle_backend: str) -> bool:
    """Whether ``runner`` can follow a job whose handle says it runs on ``handle_backend``: its
    own ``name``, or one of its ``follows`` (runners that do not subclass :class:`Backend` too)."""
    return handle_backend == getattr(runner, "name", None) or handle_backend in getattr(runner, "follows", ())
