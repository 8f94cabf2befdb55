"""Judging how a trial's job ended: a pure function from a job's result to what becomes of its trial.

:func:`judge` takes the :class:`~aid2e.types.JobResult` and what is known of the trial and the
experiment, and returns a :class:`Verdict`: complete (with the metrics Ax knows), retry (an
infrastructure failure with retries left), abandon (infeasible, or canceled by aid2e), penalize
(a failure, when the campaign gives failed trials penalty values), or fail (with the reason).
It reads no clock, touches no file and calls no backend or Ax: the loop applies the verdict.
Like optuna's split of ``_run_trial`` and ``_tell``: running a trial and judging it are apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from . import data_checks
from .types import JobResult, JobState, Measurement

#: Longest failure reason kept (Ax, trials.json, logs): the head and the tail of longer ones.
MAX_REASON = 4000

ACTIONS = ("complete", "fail", "abandon", "retry", "penalize")


@frozen(kw_only=True)
class Policy:
    """What the campaign says about failures (from the scheduler's config).

    * ``max_retries``: times a trial is run again after an infrastructure failure
      (``JobResult.retryable``); a job's own failure is never retried;
    * ``penalty``: values a failed trial completes with instead of failing (None: it fails);
    * ``trial_timeout``: seconds a job may run before aid2e cancels it (for the reason's text);
    * ``exit_penalty``: values a trial completes with when a stage's job exits with a code its
      ``exit_codes`` map to ``"penalty"`` (config ``penalty``, whatever the failure policy).
    """

    max_retries: int = 0
    trial_timeout: float | None = None
    penalty: Mapping[str, Measurement] | None = None
    exit_penalty: Mapping[str, Measurement] | None = None


@frozen(kw_only=True)
class Verdict:
    """What becomes of a trial whose job ended.

    ``action`` is one of :data:`ACTIONS`; ``reason`` says why (the trial's message; for a retry,
    what went wrong with the attempt); ``metrics`` are what Ax is given (complete, penalize).
    """

    action: str
    reason: str = ""
    metrics: Mapping[str, Measurement] = field(factory=dict)


@frozen(kw_only=True)
class Trial:
    """What :func:`judge` needs to know of the trial.

    * ``attempts``: the attempt that ended (1 for the first);
    * ``can_retry``: the loop can submit the trial again (it knows the job spec);
    * ``canceled_because``: aid2e canceled the job, for this reason;
    * ``timed_out_after``: aid2e canceled the job after it ran this long (``trial_timeout``).
    """

    attempts: int = 1
    can_retry: bool = True
    canceled_because: str | None = None
    timed_out_after: float | None = None


@frozen(kw_only=True)
class Experiment:
    """What :func:`judge` needs to know of the experiment: its objectives, the metrics Ax knows,
    and for each metric with results whether they carry a standard error (see
    :func:`aid2e.data_checks.metric_conventions`)."""

    objective_names: tuple[str, ...]
    metric_names: frozenset[str]


def judge(result: JobResult, trial: Trial, experiment: Experiment, policy: Policy,
          completed: Iterable[Any] = ()) -> Verdict:
    """The verdict on a trial whose job ended with ``result``.

    ``completed``: the trial records so far (for each metric's sem convention, which a new
    result must follow for Ax to take it). In order:

    1. a job aid2e canceled for exceeding ``trial_timeout`` failed (saying so);
    2. an infrastructure failure (``retryable``) with retries left is retried;
    3. a completed result declaring the design infeasible is abandoned;
    4. a completed result lacking an objective, or one Ax cannot take, failed;
    5. a completed result is complete, with the metrics Ax knows;
    6. a job aid2e canceled is abandoned with aid2e's reason;
    7. anything else failed (a job canceled outside aid2e says so); with a penalty policy a
       failed trial is penalized instead.
    """
    if trial.timed_out_after is not None:
        result = JobResult(state=JobState.FAILED, exit_code=result.exit_code,
                           message=f"trial exceeded trial_timeout={policy.trial_timeout or 0:g} s and was "
                           f"canceled (ran {trial.timed_out_after:.0f} s)")
    if (result.state is JobState.FAILED and result.retryable and trial.can_retry
            and trial.attempts <= policy.max_retries):
        return Verdict(action="retry", reason=result.message)
    if result.state is JobState.COMPLETED:
        if result.infeasible is not None:
            return Verdict(action="abandon", reason=f"infeasible: {result.infeasible}")
        problem = _result_problem(result, experiment, completed)
        if problem is None:
            known = experiment.metric_names
            return Verdict(action="complete", metrics={k: v for k, v in result.metrics.items() if k in known})
        return _failed(problem, policy, completed)
    if result.state is JobState.CANCELED and trial.canceled_because is not None:
        return Verdict(action="abandon", reason=trial.canceled_because)
    reason = shorten(result.message or f"job ended {result.state.value}")
    if result.state is JobState.CANCELED:
        reason = f"job was canceled outside aid2e: {reason}"
    return _failed(reason, policy, completed)


@frozen(kw_only=True)
class StageJob:
    """What :func:`judge_job` needs to know of a workflow job that ended (as :class:`Trial` for a
    trial's one job): its key, attempt, its stage's ``exit_codes``, and why aid2e canceled it."""

    key: str
    attempts: int = 1
    exit_codes: Mapping[int, str] = field(factory=dict)
    canceled_because: str | None = None
    timed_out_after: float | None = None


@frozen(kw_only=True)
class JobVerdict:
    """What becomes of a workflow job that ended: ``"done"`` (its output is kept and the jobs
    after it may start; for the last stage's job, ``trial`` is then decided by :func:`judge`),
    ``"retry"`` (run it again), or ``"end"``: its trial ends now with the verdict ``trial``."""

    action: str
    reason: str = ""
    trial: Verdict | None = None


def judge_job(result: JobResult, job: StageJob, policy: Policy, completed: Iterable[Any] = ()) -> JobVerdict:
    """The verdict on a workflow job whose run ended with ``result``. In order:

    1. a job aid2e canceled for exceeding ``trial_timeout`` failed (saying so);
    2. an infrastructure failure with retries left (``max_retries`` per job) is retried;
    3. an exit code its stage's ``exit_codes`` maps ends the trial: ``"penalty"`` completes it with
       the penalty values, ``"infeasible"`` abandons it, ``"fail"`` fails it (whatever the policy);
    4. a completed job declaring the design infeasible abandons the trial;
    5. a completed job is done;
    6. a job aid2e canceled abandons the trial with aid2e's reason;
    7. anything else fails the trial, or penalizes it under the penalty policy.

    ``completed``: the trial records so far (penalty values take their metrics' sem convention).
    """
    where = f"job {job.key}"
    if job.timed_out_after is not None:
        result = JobResult(state=JobState.FAILED, exit_code=result.exit_code,
                           message=f"exceeded trial_timeout={policy.trial_timeout or 0:g} s and was canceled "
                           f"(ran {job.timed_out_after:.0f} s)")
    if result.state is JobState.FAILED and result.retryable and job.attempts <= policy.max_retries:
        return JobVerdict(action="retry", reason=result.message)
    reason = f"{where}: {shorten(result.message or f'ended {result.state.value}')}"
    action = job.exit_codes.get(result.exit_code) if result.state is JobState.FAILED and result.exit_code else None
    if action == "penalty" and policy.exit_penalty is not None:
        return JobVerdict(action="end", reason=reason, trial=Verdict(
            action="penalize", reason=f"penalized: {reason}", metrics=penalty_metrics(policy.exit_penalty, completed)))
    if action == "infeasible":
        return JobVerdict(action="end", reason=reason, trial=Verdict(action="abandon", reason=f"infeasible: {reason}"))
    if action == "fail":
        return JobVerdict(action="end", reason=reason, trial=Verdict(action="fail", reason=reason))
    if result.state is JobState.COMPLETED:
        if result.infeasible is not None:
            return JobVerdict(action="end", trial=Verdict(action="abandon",
                                                          reason=f"infeasible: {where}: {result.infeasible}"))
        return JobVerdict(action="done")
    if result.state is JobState.CANCELED and job.canceled_because is not None:
        return JobVerdict(action="end", reason=job.canceled_because,
                          trial=Verdict(action="abandon", reason=job.canceled_because))
    if result.state is JobState.CANCELED:
        reason = f"{where} was canceled outside aid2e: {shorten(result.message or 'canceled')}"
    return JobVerdict(action="end", reason=reason, trial=_failed(reason, policy, completed))


def _result_problem(result: JobResult, experiment: Experiment, completed: Iterable[Any]) -> str | None:
    """Why a completed result cannot be the trial's (a missing objective, data Ax cannot take)."""
    missing = [m for m in experiment.objective_names if m not in result.metrics]
    if missing:
        return (f"result lacks objective metric(s) {', '.join(map(repr, missing))} "
                f"(got {', '.join(map(repr, sorted(result.metrics))) or 'none'})")
    metrics = {k: v for k, v in result.metrics.items() if k in experiment.metric_names}
    problem = data_checks.result_problem(metrics, data_checks.metric_conventions(completed, metrics))
    return None if problem is None else f"result refused: {problem}"


def _failed(reason: str, policy: Policy, completed: Iterable[Any]) -> Verdict:
    if policy.penalty is not None:
        return Verdict(action="penalize", reason=f"penalized: {reason}",
                       metrics=penalty_metrics(policy.penalty, completed))
    return Verdict(action="fail", reason=reason)


def penalty_metrics(penalty: Mapping[str, Measurement], completed: Iterable[Any]) -> dict[str, Measurement]:
    """The penalty values in the form the metrics' results take (Ax fails on a mix): a value
    given without a sem gets sem 0 (it is exact) where completed results carry a sem."""
    conventions = data_checks.metric_conventions(completed, penalty)
    return {name: Measurement(mean=value.mean, sem=0.0) if value.sem is None and conventions.get(name) else value
            for name, value in penalty.items()}


def shorten(text: str, limit: int = MAX_REASON) -> str:
    """``text``, or its head and tail around a note of what was cut when longer than ``limit``."""
    if len(text) <= limit:
        return text
    half = limit // 2 - 20
    return f"{text[:half]} ... [{len(text) - 2 * half} characters cut] ... {text[-half:]}"


__all__ = ["ACTIONS", "MAX_REASON", "Experiment", "JobVerdict", "Policy", "StageJob", "Trial", "Verdict", "judge",
           "judge_job", "shorten"]
