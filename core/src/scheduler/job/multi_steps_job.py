"""``from scheduler.job.multi_steps_job import MultiStepsFunction``, as written for the older AID2E
scheduler: it runs as a workflow of stages (:mod:`aid2e.multi_steps`)."""

from aid2e.multi_steps import JobType, MultiStepsFunction

__all__ = ["JobType", "MultiStepsFunction"]
