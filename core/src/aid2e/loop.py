"""The trial loop: keeps every slot of a backend busy with Ax's trials until the run is done.

One pass of :meth:`TrialLoop.run`, in the scheduler's thread (Ax works on its owner thread):

1. look at Ctrl-C/SIGTERM (:mod:`aid2e.interrupts`) and cancel trials past ``trial_timeout``;
2. take as many candidates from Ax as slots are free, open their trials in the book, save;
3. submit every trial waiting for a submission (new trials, and retries), save;
4. wait until the backend says a job may have ended (or the poll interval passes), poll all
   jobs in one call, and for each ended job read its result, :func:`~aid2e.outcome.judge` it
   and apply the verdict (to the book, to Ax); save.

A trial made of stages (``workflow``, a :class:`~aid2e.stages.BoundWorkflow`) runs its jobs on
their stages' backends: a job is submitted when its inputs exist and its backend has a free
slot (each backend holds at most its ``capacity`` jobs), judged on its own when it ends
(:func:`~aid2e.outcome.judge_job`: retried, done, or ending its trial, whose other jobs are then
canceled), and the last stage's job decides the trial.

The book (:mod:`aid2e.trials`) holds every trial's state; the loop only moves it. Time is read
through a :class:`~aid2e.clock.Clock`, so a simulated backend drives the loop in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from . import atomic
from .clock import SYSTEM_CLOCK, Clock
from .errors import Aid2eError, ConfigError, SubmitError
from .interrupts import CHECK_INTERVAL, Interruption, StopSignals, second_press_grace
from .jobs.files import ATTEMPT_FILE
from .outcome import Experiment, Policy, StageJob, Trial, Verdict, judge, judge_job, shorten
from .trials import JobEntry, TrialBook
from .types import JobHandle, JobRequest, JobResult, JobState, Measurement

log = logging.getLogger(__name__)

#: Seconds between looks at the backend while free slots wait for Ax's next candidates.
AX_WAIT_SLICE = 0.05
#: Mean generation time (s) above which a few candidates are kept ready in advance.
SLOW_GENERATION = 0.5
#: Finished trials below which the failure rate is taken over this many (a first failure does not stop a run).
MIN_FINISHED_FOR_RATE = 5


@frozen(kw_only=True)
class ExperimentFacts:
    """What the loop needs to know of the Ax experiment, read once before Ax goes to its thread."""

    name: str
    objective_names: tuple[str, ...]
    metric_names: frozenset[str]
    minimize: dict[str, bool]  # empty for several objectives

    @classmethod
    def of(cls, bridge: Any) -> ExperimentFacts:
        return cls(
            name=bridge.name,
            objective_names=tuple(bridge.objective_names),
            metric_names=frozenset(bridge.metric_names),
            minimize={} if bridge.is_multi_objective else {m: bridge.minimize(m) for m in bridge.objective_names},
        )

    def for_judging(self) -> Experiment:
        return Experiment(objective_names=self.objective_names, metric_names=self.metric_names)


def failure_rate_exceeded(counts: Mapping[str, int], tolerated: float, max_failed: int | None = None) -> bool:
    """More trials failed than ``tolerated`` of the finished ones (at least :data:`MIN_FINISHED_FOR_RATE`),
    or more failed or were penalized than ``max_failed``."""
    finished = counts["COMPLETED"] + counts["FAILED"]
    if max_failed is not None and counts["FAILED"] + counts.get("PENALIZED", 0) > max_failed:
        return True
    return counts["FAILED"] > tolerated * max(finished, MIN_FINISHED_FOR_RATE)


class InlineAx:
    """Outcomes applied to Ax at once, in this thread (outside a run, no owner thread)."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge

    def report(self, function: Callable[..., Any], *args: Any) -> None:
        function(self.bridge, *args)


class TrialLoop:
    """Runs trials on ``backend``; see the module docstring.

    Its collaborators: ``book`` (trial state), ``ax`` (an :class:`~aid2e.ax_owner.AxOwner`, or
    :class:`InlineAx` outside a run), ``request_for(index)`` (the job request of a trial's
    current attempt, adapted to the backend), ``save(full=False)`` (writes the state),
    ``on_change()`` (progress), and ``trial_dir(index)``.
    """

    def __init__(self, *, backend: Any, book: TrialBook, ax: Any, job: Any, facts: ExperimentFacts,
                 request_for: Callable[[int], JobRequest], save: Callable[..., None], policy: Policy,
                 capacity: int, monitoring_interval: float, tolerated_failure_rate: float,
                 max_failed_trials: int | None = None,
                 experiment_dir: Path, trial_dir: Callable[[int], Path], campaign_id: str | None,
                 cleanup_after_completion: bool = False, on_change: Callable[[], None] = lambda: None,
                 clock: Clock = SYSTEM_CLOCK, workflow: Any = None,
                 on_trial_end: Callable[[int], None] = lambda index: None, on_tick: Callable[[], None] = lambda: None
                 ) -> None:
        self.backend = backend
        self.workflow = workflow  # a BoundWorkflow: trials made of stages
        self.book = book
        self.ax = ax
        self.job = job
        self.facts = facts
        self._judged = facts.for_judging()  # what outcome.judge needs of the experiment
        self.request_for = request_for
        self.save = save
        self.policy = policy
        self.capacity = capacity
        self.monitoring_interval = monitoring_interval
        self.tolerated_failure_rate = tolerated_failure_rate
        self.max_failed_trials = max_failed_trials
        self.experiment_dir = experiment_dir
        self.trial_dir = trial_dir
        self.campaign_id = campaign_id
        self.cleanup_after_completion = cleanup_after_completion
        self.on_change = on_change
        self.on_trial_end = on_trial_end  # progress: the one line per trial that ends
        self.on_tick = on_tick  # progress: called once per pass (a periodic summary)
        self.clock = clock
        self.stopping = False  # Ctrl-C or SIGTERM: this run launches nothing more
        self._poll_failing = False  # the backend's last poll raised: poll again once per tick only

    # ------------------------------------------------------------ the run
    def run(self, *, budget: int, given: Mapping[int, Mapping[str, Any]] | None = None) -> Interruption | None:
        """Keep every slot busy until ``budget`` trials from Ax (or the ``given`` ones) have run.

        Launching and completion handling never wait for a model fit (Ax works on its owner
        thread). The backend is polled when its ``wait`` reports a possible change or every
        ``min(monitoring_interval, backend.poll_interval)`` seconds. Returns what Ctrl-C or
        SIGTERM stopped (see ``AxScheduler.run_optimization``), or None.
        """
        owner = self.ax
        pending = list(given.items()) if given is not None else None
        launched = 0
        stop: Interruption | None = None
        tick = self.monitoring_interval
        poll_every = min(tick, float(getattr(self.backend, "poll_interval", tick) or tick))
        last_poll = self.clock.monotonic()
        with StopSignals() as signals:
            while True:
                try:
                    self.on_tick()
                    if signals.stop and stop is None:
                        stop = self._stop_launching(signals)
                    if stop is not None and signals.presses >= 2 and self.book.jobs():
                        stop.canceled += len(self.book.jobs())
                        self.cancel_all("canceled by a second Ctrl-C")
                    self._enforce_timeout()
                    stop_launching = stop is not None or self.failure_rate_exceeded()
                    free = self.capacity - self.book.in_flight
                    if not stop_launching and free > 0:
                        if pending is not None:
                            batch, pending = pending[:free], pending[free:]
                        else:
                            batch = owner.take(min(free, budget - launched))
                        if batch:
                            self.launch(dict(batch), owner.generations_of([index for index, _ in batch]))
                            launched += len(batch)
                            free -= len(batch)
                    if not self.stopping and self.book.awaiting():
                        self._submit_awaiting()  # new trials, retries, and workflow jobs whose inputs now exist
                    if pending is None:
                        owner.want(0 if stop_launching else min(budget - launched, free + self._prefetch()))
                    wants_more = not stop_launching and (
                        bool(pending) if pending is not None
                        else launched < budget and not (owner.exhausted and not owner.ready_count))
                    if not self.book.jobs():
                        if not wants_more:
                            if stop is not None:
                                self._offer_cancel(stop, signals)
                                for index, _parameters in pending or ():  # given trials never launched
                                    self.ax.report(abandon, index, f"not launched: {stop.signal} stopped the run")
                            return stop
                        if pending is None and owner.idle_without_candidates and not owner.exhausted:
                            raise Aid2eError(
                                "Ax generated no new trial while none is running; check the generation "
                                f"strategy (e.g. its trial limits) of experiment {self.facts.name!r}"
                            )
                    waiting_for_ax = pending is None and wants_more and free > 0
                    if self.book.jobs():
                        timeout = max(0.0, poll_every - (self.clock.monotonic() - last_poll))
                        timeout = min(timeout, AX_WAIT_SLICE if waiting_for_ax else CHECK_INTERVAL)
                        changed = self._wait_for_jobs(timeout)
                        if changed or self.clock.monotonic() - last_poll >= poll_every:
                            last_poll = self.clock.monotonic()
                            if self.poll():
                                self.save()
                    elif waiting_for_ax:
                        owner.wait_ready(min(tick, CHECK_INTERVAL))
                except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                    signals.press()

    def _prefetch(self) -> int:
        """Candidates to keep ready beyond the free slots: a whole wave when they come from a
        quasi-random generator (data would not change them), a few when generation is slow."""
        owner = self.ax
        if not getattr(owner, "generations", 0):
            return 0
        if owner.ignores_data:  # quasi-random: the next wave is ready when this one ends
            return self.capacity
        slow = owner.generation_seconds / owner.generations > SLOW_GENERATION
        return max(1, self.capacity // 4) if slow else 0

    def failure_rate_exceeded(self) -> bool:
        return failure_rate_exceeded(self.book.counts(), self.tolerated_failure_rate, self.max_failed_trials)

    # ------------------------------------------------------------ launching
    def launch(self, trials: Mapping[int, Mapping[str, Any]],
               generations: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        """Open trials ``{index: parameters}`` (made by ``generations``, ``{index: facts}``, see
        :attr:`aid2e.trials.TrialRecord.generation`) and submit them. Their records are saved before
        submission (no handle yet) and again with their handles, so no job ever runs unrecorded."""
        for index, parameters in trials.items():
            generation = (generations or {}).get(index)
            if self.workflow is None:
                self.book.open(index, parameters, generation=generation)
            else:
                self.queue_ready(self.book.open(index, parameters, self.workflow.new_jobs(), generation).index)
        self.save()
        self._submit_awaiting()
        if self.workflow is not None:
            self.on_change()

    def _note_running(self, entry: JobEntry) -> None:
        """Record when a poll first saw the job running (the time before it is its queue wait);
        saved with the trial's next change."""
        record = self.book[entry.trial]
        target = record.jobs[entry.name] if entry.name else record
        if target.running_at is None:
            target.running_at = entry.active_since

    def queue_ready(self, index: int) -> None:
        """Queue trial ``index``'s jobs whose inputs exist: RUNNING without a handle (saved so
        before their submission, like a new trial's job)."""
        record = self.book[index]
        for key in self.workflow.ready(record):
            record.jobs[key].status = "RUNNING"
            self.book.await_submission(index, key)

    def _submit_awaiting(self) -> None:
        """Submit every job waiting for its submission (the workflow jobs whose backend has a
        free slot); save their handles."""
        submitted = False
        for index, key in self.book.awaiting():
            if not self.book.is_awaiting(index, key):  # its trial ended meanwhile
                continue
            if key:
                backend = self.workflow.backend_of(key)
                if self.book.on_backend(backend) >= self.slots(backend):
                    continue
            self.submit(index, key)
            submitted = True
        if submitted:
            self.save()

    def resume_trial(self, index: int) -> None:
        """Follow a loaded trial made of stages again: each job saved with a handle is followed,
        each saved just before its submission is adopted (its backend finds it under the job's
        token) or queued again, and the jobs whose inputs exist are queued. A finished job never
        runs again."""
        record = self.book[index]
        if list(record.jobs) != self.workflow.keys():
            raise ConfigError(
                f"trial {index} is running with other stages or fan-out than the workflow set now (its jobs: "
                f"{', '.join(list(record.jobs)[:4])}{', ...' if len(record.jobs) > 4 else ''}): set the campaign's "
                "own workflow to resume it")
        for key, job in record.jobs.items():
            if job.status != "RUNNING":
                continue
            backend = self.workflow.backend_of(key)
            if job.handle is not None:
                self.book.submitted(index, job.handle, key, backend)
                continue
            target = self.runs_on(backend)
            adopted = None
            if hasattr(target, "adopt"):
                request = self.workflow.request(experiment=self.facts.name, record=record, key=key,
                                                trial_dir=self.trial_dir(index))
                adopted = target.adopt(request)
            if adopted is not None:
                log.info("trial %d: found job %s (%s), following it", index, key, adopted.native_id)
                self.book.submitted(index, with_token(adopted, job.token), key, backend)
            else:
                self.book.await_submission(index, key)
        self.queue_ready(index)

    def _backend_of_job(self, job: Any) -> Any:
        """The backend a workflow job runs on (None: the scheduler's)."""
        return self.workflow.backend_of(job.key)

    def runs_on(self, backend: Any) -> Any:
        """The backend a job runs on: ``backend``, or the scheduler's when None (as job entries
        and stages say it)."""
        return self.backend if backend is None else backend

    def slots(self, backend: Any) -> int:
        """How many jobs ``backend`` (None: the scheduler's) holds at once."""
        return max(1, int(getattr(self.runs_on(backend), "capacity", 1) or 1))

    def submit(self, index: int, key: str = "") -> None:
        """Submit job ``key`` of trial ``index`` (its trial's one job for ``""``) for its current
        attempt (its record, with the attempt's token, is saved). A refused submission ends the
        job like a failure (a configuration error is raised after)."""
        record = self.book[index]
        job = record.jobs[key] if key else None
        stage_backend = None if job is None else self.workflow.backend_of(key)  # None: the scheduler's
        (job or record).started_at = self.clock.time()
        try:
            request = self.request_for(index) if job is None else self.workflow.request(
                experiment=self.facts.name, record=record, key=key, trial_dir=self.trial_dir(index))
            atomic.private_dir(request.workdir)
            # a marker for people and tools: the token's durable copy is the record saved (fsynced) before
            attempt = {"campaign": self.campaign_id, "trial": index, "attempt": (job or record).attempts,
                       "token": (job or record).token}
            if job is not None:
                attempt["job"] = key
            atomic.write_json(Path(request.workdir) / ATTEMPT_FILE, attempt, sync=False)
            handle = self.runs_on(stage_backend).submit(request)
        except (SubmitError, ConfigError, OSError) as exc:
            failed = JobResult(state=JobState.FAILED, message=f"could not submit the job: {exc}")
            if job is None:
                self.decide(index, failed)
            else:
                self.stage_job_ended(index, key, failed)
            if isinstance(exc, ConfigError):
                raise
            return
        token = (job or record).token
        entry = self.book.submitted(index, with_token(handle, token, request.labels), key, stage_backend)
        if job is None:
            log.info("trial %d started (%s %s)", index, entry.handle.backend, entry.handle.native_id)
            self.on_change()
        else:  # progress is told when a trial starts or ends, not at each of its jobs
            log.debug("trial %d: job %s started (%s %s)", index, key, entry.handle.backend, entry.handle.native_id)

    # ------------------------------------------------------------ following
    def _wait_for_jobs(self, timeout: float) -> bool:
        """The backends' ``wait``; while polling fails, a plain pause of ``timeout`` instead: the
        backend may keep reporting a change (a job it saw end) and every poll would ask the batch
        system again, hundreds of times a second. With jobs on several backends, each waits a
        share of ``timeout`` in turn."""
        if self._poll_failing:
            self.clock.sleep(max(0.0, timeout))
            return False
        groups = self._by_backend(self.book.jobs())
        if len(groups) == 1:
            backend, entries = next(iter(groups.values()))
            return backend.wait([e.handle for e in entries], timeout)
        share = timeout / max(1, len(groups))
        return any([backend.wait([e.handle for e in entries], share) for backend, entries in groups.values()])

    def _by_backend(self, entries: list[JobEntry]) -> dict[int, tuple[Any, list[JobEntry]]]:
        """``entries`` grouped by the backend they run on (keyed by its id)."""
        groups: dict[int, tuple[Any, list[JobEntry]]] = {}
        for entry in entries:
            backend = self.runs_on(entry.backend)
            groups.setdefault(id(backend), (backend, []))[1].append(entry)
        return groups

    def poll(self) -> bool:
        """Poll every job in flight once (one call per backend); judge the jobs that ended. True if any ended."""
        ended = False
        failing = False
        for backend, entries in self._by_backend(self.book.jobs()).values():
            try:
                states = backend.poll([entry.handle for entry in entries])
            except Exception as exc:  # a batch system hiccup must not lose the campaign
                log.warning("polling %s failed, will retry: %s", type(backend).__name__, exc)
                failing = True
                continue
            for entry in entries:
                state = states.get(entry.handle.native_id)
                if state is JobState.ACTIVE and entry.active_since is None:
                    entry.active_since = self.clock.time()
                    self._note_running(entry)
                if state is None or not state.is_final:
                    continue
                if self.book.entry(entry.trial, entry.name) is not entry:  # its trial ended meanwhile
                    continue
                try:
                    result = backend.result(entry.handle)
                except Exception as exc:
                    result = JobResult(state=JobState.FAILED, message=f"could not read the job's result: {exc}")
                self.job_ended(entry, result)
                ended = True
        self._poll_failing = failing
        return ended

    def job_ended(self, entry: JobEntry, result: JobResult) -> None:
        """A followed job ended with ``result``: its trial (of one job) is decided, or the
        workflow job is judged."""
        self.book.job_ended(entry)
        timed_out_after = None
        if entry.timed_out:
            record = self.book[entry.trial]
            started = record.jobs[entry.name].started_at if entry.name else record.started_at
            since = entry.active_since if entry.active_since is not None else started
            now = self.clock.time()
            timed_out_after = now - (since if since is not None else now)
        if entry.name:
            self.stage_job_ended(entry.trial, entry.name, result, canceled_because=entry.cancel_reason,
                                 timed_out_after=timed_out_after)
        else:
            self.decide(entry.trial, result, canceled_because=entry.cancel_reason, timed_out_after=timed_out_after)

    def stage_job_ended(self, index: int, key: str, result: JobResult, *, canceled_because: str | None = None,
                        timed_out_after: float | None = None) -> None:
        """Judge workflow job ``key`` of trial ``index`` and apply the verdict: run it again,
        keep its output and queue the jobs it unblocks (or, the last stage's, decide the trial),
        or end the trial (its other jobs are canceled)."""
        record = self.book[index]
        job = record.jobs[key]
        stage = self.workflow.stage_of(key).stage
        verdict = judge_job(result, StageJob(key=key, attempts=job.attempts, exit_codes=stage.exit_codes,
                                             canceled_because=canceled_because, timed_out_after=timed_out_after),
                            self.policy, self.book.records.values())
        now = self.clock.time()
        if verdict.action == "retry":
            self.book.new_job_attempt(index, key, submit=not self.stopping)
            self._note_retry(job, result, f"trial {index}: job {key}")
            return
        job.ended_at = now
        if verdict.action == "done":
            job.status, job.output = "COMPLETED", result.output  # its message keeps what earlier attempts met
            if key != self.workflow.final:
                log.debug("trial %d: job %s done", index, key)
                self.queue_ready(index)
                return
            trial = Trial(attempts=record.attempts, can_retry=False)
            self.apply(index, judge(result, trial, self._judged, self.policy, self.book.records.values()), result)
            return
        job.status = "CANCELED" if result.state is JobState.CANCELED else "FAILED"
        job.message = shorten(result.message or f"ended {result.state.value}")
        assert verdict.trial is not None
        self._cancel_jobs(index, f"canceled: job {key} ended the trial ({verdict.trial.action})")
        self.apply(index, verdict.trial, result)

    def _cancel_jobs(self, index: int, reason: str) -> None:
        """Cancel trial ``index``'s jobs in flight and mark those that have not ended (its trial
        is ending: the book stops following them)."""
        now = self.clock.time()
        for key, job in self.book[index].jobs.items():
            entry = self.book.entry(index, key)
            if entry is not None:
                entry.cancel_reason = reason
                try:
                    self.runs_on(entry.backend).cancel(entry.handle)
                except Exception as exc:
                    log.warning("could not cancel job %s of trial %d: %s", key, index, exc)
            if job.status in ("WAITING", "RUNNING"):
                job.status, job.message, job.ended_at = "CANCELED", reason, now

    def decide(self, index: int, result: JobResult, *, canceled_because: str | None = None,
               timed_out_after: float | None = None) -> Verdict:
        """Judge trial ``index``'s result and apply the verdict to the book and to Ax."""
        record = self.book[index]
        trial = Trial(attempts=record.attempts, can_retry=self.job is not None,
                      canceled_because=canceled_because, timed_out_after=timed_out_after)
        verdict = judge(result, trial, self._judged, self.policy, self.book.records.values())
        if verdict.action == "retry":
            self.book.new_attempt(index, submit=not self.stopping)
            self._note_retry(record, result, f"trial {index}")
            return verdict
        self.apply(index, verdict, result)
        return verdict

    def _note_retry(self, attempt: Any, result: JobResult, what: str) -> None:
        """A trial's job, or a workflow job, (``attempt``: its record, made a new attempt) runs
        again: say why in its message and the log, and save (the retry's attempt and token are on
        disk before its job exists)."""
        attempt.message = f"attempt {attempt.attempts - 1} failed: {result.message}"
        if self.stopping:  # after Ctrl-C nothing is launched: the retry is left for a resumed scheduler
            attempt.message += "; runs again on resume"
        else:
            log.warning("%s: %s; running it again (attempt %d of %d)", what,
                        result.message.splitlines()[0] if result.message else "infrastructure failure",
                        attempt.attempts, self.policy.max_retries + 1)
        self.save()

    def apply(self, index: int, verdict: Verdict, result: JobResult) -> None:
        """End trial ``index`` as ``verdict`` says, in the book and in Ax."""
        now = self.clock.time()
        if verdict.action == "abandon":
            self.ax.report(abandon, index, verdict.reason)
            self.book.close(index, "ABANDONED", message=verdict.reason, at=now)
        elif verdict.action in ("complete", "penalize"):
            self.ax.report(complete, index, verdict.metrics)
            message = verdict.reason if verdict.action == "penalize" else None
            self.book.close(index, "COMPLETED", message=message, metrics=verdict.metrics, at=now,
                            penalized=verdict.action == "penalize")
            if verdict.action != "penalize":
                extra = sorted(set(result.metrics) - self.facts.metric_names)
                if extra:
                    log.debug("trial %d: ignoring metrics Ax does not know: %s", index, extra)
                if self.cleanup_after_completion:  # a penalized trial's directory stays, as a failed one's
                    shutil.rmtree(self.trial_dir(index), ignore_errors=True)
        else:
            self.ax.report(fail, index, verdict.reason)
            self.book.close(index, "FAILED", message=verdict.reason, at=now)
        self.on_trial_end(index)
        self.on_change()

    def _enforce_timeout(self) -> None:
        """Cancel trials running longer than ``trial_timeout`` (they end as FAILED, saying so),
        timed from the first poll that saw their job running: time spent queued (in a batch
        queue, or behind busy workers) does not count."""
        limit = self.policy.trial_timeout
        if limit is None:
            return
        now = self.clock.time()
        for entry in self.book.jobs():
            if not entry.timed_out and entry.active_since is not None and now - entry.active_since > limit:
                entry.timed_out = True
                what = f"trial {entry.trial}" + (f" job {entry.name}" if entry.name else "")
                log.warning("%s exceeded trial_timeout=%g s: canceling it", what, limit)
                try:
                    self.runs_on(entry.backend).cancel(entry.handle)
                except Exception as exc:
                    log.warning("could not cancel %s: %s", what, exc)

    def cancel_all(self, reason: str, timeout: float = 60.0) -> None:
        """Cancel every job in flight and abandon their trials (with ``reason``). Jobs that do not
        report their end within ``timeout`` seconds are abandoned anyway."""
        for entry in self.book.jobs():
            entry.cancel_reason = reason
            try:
                self.runs_on(entry.backend).cancel(entry.handle)
            except Exception as exc:
                log.warning("could not cancel trial %d: %s", entry.trial, exc)
        deadline = self.clock.monotonic() + timeout
        while self.book.jobs() and self.clock.monotonic() < deadline:
            self._wait_for_jobs(min(1.0, max(0.0, deadline - self.clock.monotonic())))
            self.poll()
        for entry in self.book.jobs():
            if self.book.entry(entry.trial, entry.name) is entry:  # not already ended with its trial
                self.job_ended(entry, JobResult(state=JobState.CANCELED,
                                                message=f"{reason}; the job did not confirm its end"))
        self.save()

    # ------------------------------------------------------------ interrupts
    def _stop_launching(self, signals: StopSignals) -> Interruption:
        """First Ctrl-C or SIGTERM: stop launching, let go of the jobs that outlive this process
        (their records stay RUNNING with their handles, for a resumed scheduler), save."""
        self.stopping = True
        with contextlib.suppress(AttributeError):
            self.ax.want(0)
        stop = Interruption(signal="SIGTERM" if signals.terminated and not signals.presses else "Ctrl-C")
        for entry in self.book.jobs():
            backend = self.runs_on(entry.backend)
            if ask(backend, "outlives_controller", entry.handle, False):
                self.book.unfollow(entry)
                if entry.trial not in stop.left_running:
                    stop.left_running.append(entry.trial)
            elif signals.terminated:  # the process is about to end: stop it, run it again on resume
                with contextlib.suppress(Exception):
                    backend.cancel(entry.handle)
                self.book.unfollow(entry, keep_handle=False)
                if entry.trial not in stop.rerun:
                    stop.rerun.append(entry.trial)
                if not ask(backend, "cancel_stops", entry.handle, True):
                    stop.not_stopped += 1
        self.save()
        if self.book.jobs():
            stop.awaited = len(self.book.jobs())
            log.warning("%s: no new trials start; waiting for %d running trial(s) whose jobs cannot outlive "
                        "this process. Press Ctrl-C again to cancel them. State is saved in %s",
                        stop.signal, len(self.book.jobs()), self.experiment_dir)
        return stop

    def _offer_cancel(self, stop: Interruption, signals: StopSignals) -> None:
        """At a terminal, give a second Ctrl-C a moment to cancel the jobs left running."""
        grace = second_press_grace()
        if not stop.left_running or grace <= 0 or signals.terminated:
            return
        log.warning("%d trial(s) are left running as jobs; press Ctrl-C again within %g s to cancel them",
                    len(stop.left_running), grace)
        deadline = self.clock.monotonic() + grace
        while signals.presses < 2 and self.clock.monotonic() < deadline:
            try:
                self.clock.sleep(0.05)
            except KeyboardInterrupt:
                signals.press()
        if signals.presses >= 2:
            for index in stop.left_running:
                self.book.follow(index, self._backend_of_job)
            stop.canceled += len(stop.left_running)
            stop.left_running.clear()
            self.cancel_all("canceled by a second Ctrl-C")


def with_token(handle: JobHandle, token: str, labels: Mapping[str, str] | None = None) -> JobHandle:
    """``handle`` carrying the attempt's ``token`` (backends check files against it) and ``labels``."""
    extra = {**handle.extra, **(labels or {})}
    if token:
        extra["token"] = token
    return attrs.evolve(handle, extra=extra) if extra != handle.extra else handle


def ask(backend: Any, question: str, handle: JobHandle, default: bool) -> bool:
    """The backend's answer to an optional yes/no method about a job (``outlives_controller``,
    ``cancel_stops``), or ``default`` if it has none or it fails."""
    check = getattr(backend, question, None)
    try:
        return bool(check(handle)) if callable(check) else default
    except Exception:  # a third-party backend's bug must not turn Ctrl-C into a crash
        log.debug("%s failed", question, exc_info=True)
        return default


# ---------------------------------------------------------------- outcomes, applied where Ax lives
def complete(bridge: Any, index: int, metrics: Mapping[str, Measurement]) -> None:
    bridge.complete(index, metrics)


def _complete_many(bridge: Any, completions: list[tuple[int, Mapping[str, Measurement]]]) -> None:
    bridge.complete_many(dict(completions))


complete.many = _complete_many  # type: ignore[attr-defined]  # the owner thread batches a wave


def fail(bridge: Any, index: int, reason: str) -> None:
    bridge.fail(index, reason)


def abandon(bridge: Any, index: int, reason: str) -> None:
    bridge.abandon(index, reason)


__all__ = ["ExperimentFacts", "InlineAx", "TrialLoop", "abandon", "ask", "complete", "fail",
           "failure_rate_exceeded", "with_token"]
