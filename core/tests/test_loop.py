"""The trial loop on a simulated backend and clock (aid2e.testing.simulator): hours of a campaign
in milliseconds, no threads, no Ax. Ax is a scripted stand-in with AxOwner's interface."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from aid2e.loop import ExperimentFacts, TrialLoop
from aid2e.outcome import Policy
from aid2e.testing.simulator import SimulatedBackend, SimulatedClock, SimulatedCluster, SimulatedJob
from aid2e.trials import TrialBook
from aid2e.types import FunctionJob, JobRequest, JobResult, JobState, Measurement

FACTS = ExperimentFacts(name="sim", objective_names=("loss",), metric_names=frozenset({"loss"}),
                        minimize={"loss": True})
JOB = FunctionJob(function=print)


class ScriptedAx:
    """Ax as the loop sees it (AxOwner's interface), answering at once: the ``candidates`` are
    handed out in order; outcomes are recorded as ``(what, index, detail)``."""

    def __init__(self, count: int) -> None:
        self._ready = [(i, {"x": float(i)}) for i in range(count)]
        self.outcomes: list[tuple[str, int, Any]] = []
        self.generations, self.generation_seconds, self.ignores_data = 0, 0.0, False

    def take(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        taken, self._ready = self._ready[:limit], self._ready[limit:]
        return taken

    def want(self, count: int) -> None:
        pass

    def generations_of(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        """Each trial made by a generation of its own, at wall time 1000 + index."""
        return {i: {"at": 1000.0 + i, "seconds": 0.25, "size": 1, "node": "Scripted"} for i in indices}

    exhausted = property(lambda self: not self._ready)
    ready_count = property(lambda self: len(self._ready))
    idle_without_candidates = property(lambda self: not self._ready)

    def wait_ready(self, timeout: float) -> None:
        pass

    def report(self, function: Any, *args: Any) -> None:
        function(self, *args)

    def complete(self, index: int, metrics: dict[str, Measurement]) -> None:
        self.outcomes.append(("complete", index, {k: v.mean for k, v in metrics.items()}))

    def fail(self, index: int, reason: str) -> None:
        self.outcomes.append(("fail", index, reason))

    def abandon(self, index: int, reason: str) -> None:
        self.outcomes.append(("abandon", index, reason))


class Campaign:
    """A loop over a simulated backend, with a log of saves and submissions in order."""

    def __init__(self, tmp_path: Path, trials: int, *, plan: Any = None, capacity: int = 3,
                 policy: Policy | None = None, tolerated_failure_rate: float = 1.0) -> None:
        self.clock = SimulatedClock()
        self.cluster = SimulatedCluster(self.clock)
        self.events: list[tuple[str, Any]] = []
        self.peak = 0
        user_plan = plan or (lambda request: SimulatedJob(run=100.0, metrics={"loss": request.parameters["x"]}))

        def logged_plan(request: JobRequest) -> SimulatedJob:
            self.events.append(("submit", request.token))
            return user_plan(request)

        self.backend = SimulatedBackend(cluster=self.cluster, capacity=capacity, plan=logged_plan)
        self.book = TrialBook()
        self.ax = ScriptedAx(trials)
        self.loop = TrialLoop(
            backend=self.backend, book=self.book, ax=self.ax, job=JOB, facts=FACTS,
            request_for=self.request_for, save=self.save, policy=policy or Policy(),
            capacity=capacity, monitoring_interval=30.0, tolerated_failure_rate=tolerated_failure_rate,
            experiment_dir=tmp_path, trial_dir=lambda i: tmp_path / f"trial_{i}", campaign_id="c",
            on_change=self.watch, clock=self.clock)
        self.tmp_path = tmp_path

    def request_for(self, index: int) -> JobRequest:
        record = self.book[index]
        return JobRequest(experiment="sim", trial_index=index, parameters=dict(record.parameters), job=JOB,
                          workdir=str(self.tmp_path / f"trial_{index}" / f"attempt_{record.attempts}"),
                          token=record.token)

    def save(self, *, full: bool = False) -> None:
        self.events.append(("save", {r.token for r in self.book.records.values()}))

    def watch(self) -> None:
        self.peak = max(self.peak, len(self.book.jobs()))

    def run(self, budget: int) -> Any:
        return self.loop.run(budget=budget)

    def saved_before_submitted(self) -> bool:
        return saved_before_submitted(self.events)


def saved_before_submitted(events: list[tuple[str, Any]]) -> bool:
    """Whether each ``("submit", token)`` comes after a ``("save", tokens)`` holding its token."""
    saved: set[str] = set()
    for what, detail in events:
        if what == "save":
            saved |= detail
        elif detail not in saved:
            return False
    return True


def test_every_slot_stays_busy_and_every_trial_is_saved_before_its_job_exists(tmp_path):
    campaign = Campaign(tmp_path, 10, capacity=3)
    assert campaign.run(10) is None
    assert [r.status for r in campaign.book.records.values()] == ["COMPLETED"] * 10
    assert sorted(campaign.cluster.submitted_trials()) == list(range(10))  # each ran once
    assert campaign.peak == 3
    assert campaign.clock.monotonic() == pytest.approx(400.0)  # 4 waves of 100 s: no slot idle
    assert campaign.saved_before_submitted()
    assert [o[:2] for o in campaign.ax.outcomes] == [("complete", i) for i in range(10)]
    assert all(r.ended_at - r.started_at == pytest.approx(100.0) for r in campaign.book.records.values())


def test_a_vanished_job_is_retried_as_a_new_attempt_saved_before_it_runs(tmp_path):
    lost: set[int] = set()

    def plan(request: JobRequest) -> SimulatedJob:
        if request.trial_index == 2 and 2 not in lost:
            lost.add(2)
            return SimulatedJob(run=50.0, vanish=True)
        return SimulatedJob(run=100.0, metrics={"loss": 1.0})

    campaign = Campaign(tmp_path, 4, plan=plan, capacity=4, policy=Policy(max_retries=1))
    campaign.run(4)
    record = campaign.book[2]
    assert record.status == "COMPLETED" and record.attempts == 2
    assert record.message.startswith("attempt 1 failed: the job vanished")
    tokens = [r.token for r in campaign.cluster.submissions if r.trial_index == 2]
    assert len(tokens) == 2 and tokens[0] != tokens[1] and tokens[1] == record.token
    assert campaign.saved_before_submitted()
    assert campaign.clock.monotonic() == pytest.approx(150.0)  # the retry started when the loss was seen
    assert [o for o in campaign.ax.outcomes if o[1] == 2] == [("complete", 2, {"loss": 1.0})]


def test_retries_run_out(tmp_path):
    campaign = Campaign(tmp_path, 1, plan=lambda r: SimulatedJob(run=10.0, vanish=True),
                        policy=Policy(max_retries=2))
    campaign.run(1)
    assert campaign.book[0].status == "FAILED" and campaign.book[0].attempts == 3
    assert campaign.cluster.submitted_trials() == [0, 0, 0]


def test_trial_timeout_counts_from_the_first_poll_that_saw_the_job_running(tmp_path):
    campaign = Campaign(tmp_path, 1, plan=lambda r: SimulatedJob(queue=500.0, run=math.inf),
                        policy=Policy(trial_timeout=100.0))
    campaign.run(1)
    record = campaign.book[0]
    assert record.status == "FAILED"
    assert record.message.startswith("trial exceeded trial_timeout=100 s and was canceled (ran 1")
    assert campaign.cluster.cancels == ["1"]
    # queued 500 s, then ran past the limit: never canceled while queued
    assert record.ended_at - record.started_at >= 600.0


def test_a_batch_system_outage_loses_nothing(tmp_path):
    campaign = Campaign(tmp_path, 5, capacity=5)
    campaign.cluster.fail_polls = 4
    campaign.run(5)
    assert [r.status for r in campaign.book.records.values()] == ["COMPLETED"] * 5
    assert sorted(campaign.cluster.submitted_trials()) == list(range(5))


def test_a_refused_submission_fails_its_trial_and_the_rest_run(tmp_path):
    campaign = Campaign(tmp_path, 4, capacity=4)
    campaign.cluster.fail_submissions = {1}
    campaign.run(4)
    statuses = {i: r.status for i, r in campaign.book.records.items()}
    assert statuses == {0: "COMPLETED", 1: "FAILED", 2: "COMPLETED", 3: "COMPLETED"}
    assert campaign.book[1].message.startswith("could not submit the job: simulated refusal")
    assert ("fail", 1, campaign.book[1].message) in campaign.ax.outcomes


def test_penalty_policy_completes_failed_trials_with_the_penalty(tmp_path):
    def plan(request: JobRequest) -> SimulatedJob:
        if request.trial_index == 0:
            return SimulatedJob(result=JobResult(state=JobState.FAILED, exit_code=9, message="overlaps"))
        return SimulatedJob(metrics={"loss": 0.5})

    campaign = Campaign(tmp_path, 2, plan=plan, policy=Policy(penalty={"loss": Measurement(mean=100.0)}))
    campaign.run(2)
    assert campaign.book[0].status == "COMPLETED" and campaign.book[0].message == "penalized: overlaps"
    assert campaign.book[0].penalized and not campaign.book[1].penalized
    assert campaign.book[0].metrics == {"loss": Measurement(mean=100.0)}
    assert ("complete", 0, {"loss": 100.0}) in campaign.ax.outcomes


def test_too_many_failures_stop_launching(tmp_path):
    campaign = Campaign(tmp_path, 20, capacity=2, tolerated_failure_rate=0.5,
                        plan=lambda r: SimulatedJob(result=JobResult(state=JobState.FAILED, message="broken")))
    campaign.run(20)
    counts = campaign.book.counts()
    # stops once failed > 0.5 * max(finished, 5): after 3 failures, with the 2 in flight allowed to end
    assert counts["FAILED"] <= 4 and len(campaign.cluster.submissions) == counts["FAILED"]


def test_cancel_all_abandons_the_jobs_in_flight(tmp_path):
    campaign = Campaign(tmp_path, 3, plan=lambda r: SimulatedJob(run=math.inf))
    campaign.loop.launch({0: {"x": 0.0}, 1: {"x": 1.0}})
    campaign.loop.cancel_all("stopped by the test")
    assert [r.status for r in campaign.book.records.values()] == ["ABANDONED"] * 2
    assert all(r.message == "stopped by the test" for r in campaign.book.records.values())
    assert campaign.cluster.cancels == ["1", "2"] and not campaign.book.jobs()


def test_a_restarted_controller_follows_the_jobs_and_runs_nothing_twice(tmp_path):
    first = Campaign(tmp_path, 3, plan=lambda r: SimulatedJob(run=1000.0, metrics={"loss": 2.0}))
    first.loop.launch({0: {"x": 0.0}, 1: {"x": 1.0}, 2: {"x": 2.0}})
    first.clock.advance(10.0)
    # the controller dies: a new one loads the records and shares the batch system
    book = TrialBook({i: r for i, r in first.book.records.items()})
    backend = SimulatedBackend(cluster=first.cluster)
    for index in book.records:
        book.follow(index)
    second = Campaign(tmp_path, 0)
    second.book, second.backend = book, backend
    second.loop.book, second.loop.backend, second.loop.clock = book, backend, first.clock
    second.loop.run(budget=0)
    assert [r.status for r in book.records.values()] == ["COMPLETED"] * 3
    assert first.cluster.submitted_trials() == [0, 1, 2]


def test_each_trial_records_its_generation_and_when_its_job_began_to_run(tmp_path):
    """The timing a report draws: the Ax generation that made a trial, its job's queue wait
    (submitted -> first seen running) and its run (-> ended), on the simulated clock."""
    campaign = Campaign(tmp_path, 4, capacity=2, plan=lambda request: SimulatedJob(
        queue=10.0 * (request.trial_index + 1), run=100.0, metrics={"loss": 1.0}))
    campaign.run(4)
    for index, record in campaign.book.records.items():
        assert record.generation == {"at": 1000.0 + index, "seconds": 0.25, "size": 1, "node": "Scripted"}
        queued = record.running_at - record.handle.submitted_at
        assert 10.0 * (index + 1) <= queued <= 10.0 * (index + 1) + campaign.loop.monitoring_interval
        assert record.ended_at - record.running_at <= 100.0 + campaign.loop.monitoring_interval
