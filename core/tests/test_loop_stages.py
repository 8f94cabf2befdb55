"""Trials made of stages in the trial loop, on a simulated backend and clock: every slot busy
while jobs are ready, every job saved before it is submitted, a failed job ending its trial."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_loop import FACTS, ScriptedAx, saved_before_submitted

from aid2e.loop import TrialLoop
from aid2e.outcome import Policy
from aid2e.stages import BoundWorkflow
from aid2e.testing.simulator import SimulatedBackend, SimulatedClock, SimulatedCluster, SimulatedJob
from aid2e.trials import TrialBook
from aid2e.types import JobRequest, JobResult, JobState, Measurement, Resources
from aid2e.workflow import Stage, Workflow


def merge(x, y, inputs):  # never called: the simulated backend runs nothing
    return {"loss": x}


class StagedCampaign:
    """A loop over a simulated backend running ``workflow`` for each trial; ``plan(request)``
    says how each job goes; submissions and saves are logged in order."""

    def __init__(self, tmp_path: Path, trials: int, workflow: Workflow, plan, *, capacity: int, in_flight: int):
        self.clock = SimulatedClock()
        self.events: list[tuple[str, object]] = []
        self.running, self.peak = 0, 0

        def logged(request: JobRequest) -> SimulatedJob:
            self.events.append(("submit", request.token))
            return plan(request)

        self.backend = SimulatedBackend(cluster=SimulatedCluster(self.clock), capacity=capacity, plan=logged)
        self.book = TrialBook()
        self.ax = ScriptedAx(trials)
        bound = BoundWorkflow(workflow, self.backend, ["x"], Resources())
        self.loop = TrialLoop(
            backend=self.backend, book=self.book, ax=self.ax, job=None, facts=FACTS, request_for=None,
            save=self.save, policy=Policy(penalty={"loss": Measurement(mean=9.0)}), capacity=in_flight,
            monitoring_interval=30.0, tolerated_failure_rate=1.0, experiment_dir=tmp_path,
            trial_dir=lambda i: tmp_path / f"trial_{i}", campaign_id="c", clock=self.clock, workflow=bound)

    def save(self, *, full: bool = False) -> None:
        tokens = {job.token for r in self.book.records.values() for job in r.jobs.values() if job.status != "WAITING"}
        self.events.append(("save", tokens))
        self.peak = max(self.peak, len(self.book.jobs()))

    def saved_before_submitted(self) -> bool:
        return saved_before_submitted(self.events)


def plan_of(seconds: float, fails: str | None = None):
    def plan(request: JobRequest) -> SimulatedJob:
        if request.labels["stage"] == "merge":
            return SimulatedJob(run=0.0, result=JobResult(state=JobState.COMPLETED,
                                                          metrics={"loss": Measurement(mean=request.parameters["x"])}))
        if request.labels["job"] == fails:
            return SimulatedJob(run=seconds / 2, result=JobResult(state=JobState.FAILED, exit_code=2,
                                                                  message="script exited with code 2"))
        return SimulatedJob(run=seconds, result=JobResult(state=JobState.COMPLETED, output={"part": 1}))

    return plan


def test_twenty_trials_of_eight_jobs_keep_sixteen_slots_busy(tmp_path):
    workflow = Workflow([Stage("work", function=merge, fan_out={"part": list(range(8))}),
                         Stage("merge", function=merge)])
    campaign = StagedCampaign(tmp_path, 20, workflow, plan_of(1.0), capacity=16, in_flight=16)
    assert campaign.loop.run(budget=20) is None
    assert [r.status for r in campaign.book.records.values()] == ["COMPLETED"] * 20
    assert campaign.clock.monotonic() == pytest.approx(10.0)  # 160 job-seconds on 16 slots: never one idle
    assert campaign.peak == 16
    assert campaign.saved_before_submitted()
    assert len([e for e in campaign.events if e[0] == "submit"]) == 20 * 9  # each job once
    assert [o[:2] for o in campaign.ax.outcomes] == [("complete", i) for i in range(20)]


def test_a_failed_job_penalizes_its_trial_and_cancels_the_rest(tmp_path):
    workflow = Workflow([Stage("work", function=merge, fan_out={"part": [0, 1, 2]}),
                         Stage("merge", function=merge)])
    campaign = StagedCampaign(tmp_path, 2, workflow, plan_of(10.0, fails="part=1"), capacity=8, in_flight=2)
    campaign.loop.run(budget=2)
    for record in campaign.book.records.values():
        assert record.status == "COMPLETED" and record.penalized
        assert record.message == "penalized: job work/part=1: script exited with code 2"
        assert [record.jobs[k].status for k in ("work/part=0", "work/part=1", "work/part=2", "merge/job")] == [
            "CANCELED", "FAILED", "CANCELED", "CANCELED"]
    assert campaign.clock.monotonic() == pytest.approx(5.0)  # the others were canceled, not awaited
    assert len(campaign.backend.cluster.cancels) == 4
