"""The verdict on a trial whose job ended (aid2e.outcome.judge): a pure function, tested without
threads, Ax or a backend."""

from __future__ import annotations

import pytest

from aid2e.outcome import MAX_REASON, Experiment, Policy, Trial, judge, shorten
from aid2e.trials import TrialRecord
from aid2e.types import JobResult, JobState, Measurement

EXPERIMENT = Experiment(objective_names=("loss",), metric_names=frozenset({"loss", "cost"}))


def done(**metrics: float) -> JobResult:
    return JobResult(state=JobState.COMPLETED, metrics={k: Measurement(mean=v) for k, v in metrics.items()})


def test_completed_keeps_only_the_metrics_ax_knows():
    verdict = judge(done(loss=1.5, cost=2.0, extra=3.0), Trial(), EXPERIMENT, Policy())
    assert verdict.action == "complete" and set(verdict.metrics) == {"loss", "cost"}


def test_missing_objective_fails_naming_it():
    verdict = judge(done(cost=2.0), Trial(), EXPERIMENT, Policy())
    assert verdict.action == "fail"
    assert verdict.reason == "result lacks objective metric(s) 'loss' (got 'cost')"


def test_infeasible_is_abandoned():
    result = JobResult(state=JobState.COMPLETED, infeasible="volumes overlap")
    assert judge(result, Trial(), EXPERIMENT, Policy()).reason == "infeasible: volumes overlap"
    assert judge(result, Trial(), EXPERIMENT, Policy(penalty={"loss": Measurement(mean=9)})).action == "abandon"


@pytest.mark.parametrize("attempts, max_retries, action", [(1, 0, "fail"), (1, 1, "retry"), (2, 1, "fail"),
                                                           (2, 2, "retry"), (3, 2, "fail")])
def test_infrastructure_failures_are_retried_while_retries_are_left(attempts, max_retries, action):
    lost = JobResult(state=JobState.FAILED, message="node lost", retryable=True)
    verdict = judge(lost, Trial(attempts=attempts), EXPERIMENT, Policy(max_retries=max_retries))
    assert verdict.action == action and "node lost" in verdict.reason


def test_no_retry_without_the_job_spec_nor_for_a_scripts_own_failure():
    lost = JobResult(state=JobState.FAILED, message="node lost", retryable=True)
    assert judge(lost, Trial(can_retry=False), EXPERIMENT, Policy(max_retries=3)).action == "fail"
    own = JobResult(state=JobState.FAILED, exit_code=3, message="exit code 3")
    assert judge(own, Trial(), EXPERIMENT, Policy(max_retries=3)).action == "fail"


def test_canceled_by_aid2e_is_abandoned_and_by_someone_else_failed():
    canceled = JobResult(state=JobState.CANCELED, message="scancel")
    assert judge(canceled, Trial(canceled_because="second Ctrl-C"), EXPERIMENT, Policy()).reason == "second Ctrl-C"
    outside = judge(canceled, Trial(), EXPERIMENT, Policy())
    assert outside.action == "fail" and outside.reason == "job was canceled outside aid2e: scancel"


def test_a_timed_out_job_fails_saying_so_and_is_not_retried():
    canceled = JobResult(state=JobState.CANCELED, message="canceled")
    verdict = judge(canceled, Trial(timed_out_after=12.4, canceled_because=None), EXPERIMENT,
                    Policy(trial_timeout=10, max_retries=2))
    assert verdict.action == "fail"
    assert verdict.reason == "trial exceeded trial_timeout=10 s and was canceled (ran 12 s)"


def test_penalty_policy_turns_failures_into_penalized_completions():
    penalty = {"loss": Measurement(mean=100.0)}
    failed = JobResult(state=JobState.FAILED, exit_code=9, message="overlaps found")
    verdict = judge(failed, Trial(), EXPERIMENT, Policy(penalty=penalty))
    assert verdict.action == "penalize" and verdict.metrics == penalty
    assert verdict.reason == "penalized: overlaps found"
    assert judge(done(cost=1.0), Trial(), EXPERIMENT, Policy(penalty=penalty)).action == "penalize"


def test_a_result_ax_cannot_take_is_refused():
    earlier = TrialRecord(index=0, parameters={}, status="COMPLETED",
                          metrics={"loss": Measurement(mean=1.0, sem=0.1)})
    verdict = judge(done(loss=2.0), Trial(), EXPERIMENT, Policy(), [earlier])
    assert verdict.action == "fail" and verdict.reason.startswith("result refused: ")


def test_long_reasons_keep_head_and_tail():
    text = "head " + "x" * 10_000 + " tail"
    short = shorten(text)
    assert len(short) <= MAX_REASON + 60 and short.startswith("head ") and short.endswith(" tail")
    failed = JobResult(state=JobState.FAILED, message=text)
    assert judge(failed, Trial(), EXPERIMENT, Policy()).reason == short
    assert shorten("short") == "short"
