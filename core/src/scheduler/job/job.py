"""``from scheduler.job.job import JobType``, as written for the older AID2E scheduler (:mod:`aid2e.multi_steps`)."""

from aid2e.multi_steps import JobType

__all__ = ["JobType"]
