"""``AxScheduler``: asks Ax for trials and keeps the runner's every slot busy until done.

The loop, in one thread (Ax has no locks): ask Ax for as many trials as slots are free, submit
each as a job, wait until the runner says some job may have ended (no fixed sleeps), report
every ended job to Ax (COMPLETED with its metrics, or FAILED with its reason), refill, and save
the state (Ax experiment + every trial's job handle) after each change, atomically, under
``<job_output_dir>/<experiment name>/experiment.json``. That file is also what
``save_experiment`` writes and ``load_experiment`` reads.

Only :mod:`aid2e.ax_bridge` touches Ax; this module speaks aid2e's types.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import define, field

from . import atomic, data_checks, serialize
from . import state as state_files
from .config import SchedulerConfig
from .errors import (
    Aid2eError,
    CampaignInterrupted,
    ConfigError,
    FailureRateExceededError,
    GenerationError,
    StateWriteError,
    SubmitError,
)
from .interrupts import CHECK_INTERVAL, StopSignals, second_press_grace
from .jobs.function import function_job
from .jobs.script import ended_under, script_job
from .ownership import CampaignLock, refuse_if_held
from .plugins import get_plugin_manager
from .storage.filestore import FileStore
from .types import FunctionJob, JobAdapter, JobHandle, JobRequest, JobResult, JobState, Measurement

if TYPE_CHECKING:
    from .ax_bridge import AxBridge
    from .backend import Backend

log = logging.getLogger(__name__)

STATE_FORMAT = "aid2e-experiment"
#: 2: the Ax snapshot is compacted (see ``AxBridge.snapshot``); version 1 files still load.
STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
STATE_KEY = "experiment"
TRIALS_KEY = "trials"
MIN_FINISHED_FOR_RATE = 5
#: Written into every attempt's directory before its job is submitted: which campaign, trial,
#: attempt and token the directory now belongs to.
ATTEMPT_FILE = "aid2e_attempt.json"
#: Seconds between looks at the runner while free slots wait for Ax's next candidates.
AX_WAIT_SLICE = 0.05
#: Mean generation time (s) above which a few candidates are kept ready in advance.
SLOW_GENERATION = 0.5


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


class Batch:
    """Trials added inside ``batch_trial_context()``; they run in parallel on exit."""

    def __init__(self, scheduler: AxScheduler) -> None:
        self._scheduler = scheduler
        self.trial_indices: list[int] = []

    def add_trial(self, parameters: Mapping[str, Any]) -> int:
        """Add a trial with these parameters (checked against the search space now)."""
        if not isinstance(parameters, Mapping):
            raise ConfigError(f"add_trial needs a dict of parameters, got {type(parameters).__name__}")
        index = self._scheduler._bridge_or_error().attach_trial(parameters)
        self.trial_indices.append(index)
        return index

    @property
    def results(self) -> dict[int, TrialRecord]:
        """Each batch trial's record (after the context exits)."""
        return {i: self._scheduler.trials[i] for i in self.trial_indices}


class AxScheduler:
    """Runs an Ax experiment's trials on a runner (any aid2e backend).

    ``AxScheduler(ax_client, runner, config=None)`` where ``ax_client`` is an ``ax.Client``,
    an ``AxClient`` (deprecated by Ax) or ``None`` (then call :meth:`load_experiment`).
    """

    def __init__(self, ax_client: Any, runner: Backend, config: Mapping[str, Any] | None = None) -> None:
        for method in ("submit", "poll", "result", "cancel"):
            if not callable(getattr(runner, method, None)):
                raise ConfigError(
                    f"runner must be an aid2e backend (e.g. JobLibRunner(n_jobs=4)), got {type(runner).__name__}"
                )
        self.runner = runner
        self.config = SchedulerConfig.from_mapping(config)
        self._bridge: AxBridge | None = None
        if ax_client is not None:
            from .ax_bridge import AxBridge

            self._bridge = AxBridge(ax_client)
        self._objective: Callable[[], Any] | None = None
        self.trials: dict[int, TrialRecord] = {}
        self._running: dict[int, JobHandle] = {}
        self._canceled_by_us: dict[int, str] = {}  # trial index -> why aid2e canceled it
        self._started = False
        self._progress: Any = None
        self._last_snapshot = float("-inf")
        self._owner: Any = None
        self._facts: _ExperimentFacts | None = None
        self._job: Any = None  # the job spec of the run in progress (for retries)
        self._timed_out: set[int] = set()
        self._running_since: dict[int, float] = {}  # first poll that saw the job ACTIVE (for trial_timeout)
        self._objective_hint: str | None = None
        self._stopping = False  # Ctrl-C or SIGTERM: this run launches nothing more
        self._poll_failing = False  # the runner's last poll raised: poll again once per tick only
        self._record_texts: dict[int, tuple[TrialRecord, str]] = {}  # finished records' JSON
        self._campaign_id: str | None = None  # set at the first run, or by loading saved state
        self._campaign_dir: Path | None = None  # where the state was loaded from (else job_output_dir/name)
        self._loaded = False  # this scheduler's trials came from saved state
        self._relocated_from: str | None = None  # the saved state was written in another directory
        self._known_saved_at: float | None = None  # saved_at of the state this scheduler last wrote or read
        self._lock: CampaignLock | None = None  # held while a run is under way
        self._start_runner()  # workers warm up while the user sets the objective and Ax generates

    # ------------------------------------------------------------ the experiment
    @property
    def experiment(self) -> Any:
        """The Ax experiment."""
        return self._bridge_or_error().experiment

    @property
    def ax_client(self) -> Any:
        """The Ax client (``AxClient`` or ``ax.Client``) this scheduler drives."""
        return self._bridge_or_error().client

    def _bridge_or_error(self) -> AxBridge:
        if self._bridge is None:
            raise ConfigError("no Ax experiment: pass an Ax client to AxScheduler or call load_experiment(path)")
        return self._bridge

    @property
    def experiment_dir(self) -> Path:
        """``<job_output_dir>/<experiment name>/``: trial directories and the saved state (for a
        resumed campaign, the directory it was loaded from)."""
        if self._campaign_dir is not None:
            return self._campaign_dir
        if self._lock is not None:  # during a run: the directory it locked (resolved once)
            return self._lock.directory
        return Path(self.config.job_output_dir).resolve() / _directory_name(self._facts_name())

    def trial_dir(self, index: int) -> Path:
        return self.experiment_dir / f"trial_{index}"

    # ------------------------------------------------------------ objectives
    def set_objective_function(self, function: Callable[..., Any]) -> None:
        """Evaluate trials with ``function`` (``fn(**parameters)`` or ``fn(parameterization)``,
        see :mod:`aid2e.jobs.function`), returning ``{metric: value or (mean, sem)}``."""
        if not callable(function):
            raise ConfigError(f"set_objective_function needs a callable, got {type(function).__name__}")
        self._set_objective(lambda: function_job(function, self._bridge_or_error().parameter_names),
                            FunctionJob(function=function))

    def set_script_objective(self, script_path: str, args: tuple[str, ...] = ()) -> None:
        """Evaluate trials by running a script (contract in :mod:`aid2e.jobs.script`)."""
        spec = script_job(script_path, tuple(args))
        self._set_objective(lambda: spec, spec)

    def set_container_objective(self, container_image: str, container_command: Any, **options: Any) -> None:
        """Evaluate trials by running ``container_command`` in ``container_image``
        (needs the aid2e-containers plugin)."""
        kind = get_plugin_manager().job_kind("container")
        try:
            spec = kind.spec_type(image=container_image, command=container_command, **options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad container objective: {exc}") from None
        self._set_objective(lambda: spec, spec)

    def _job_spec(self) -> Any:
        if self._objective is None:
            raise ConfigError(self._objective_hint or (
                "no objective: call set_objective_function, set_script_objective or "
                "set_container_objective before running trials"
            ))
        self._job = self._objective()
        return self._job

    # ------------------------------------------------------------ running
    @property
    def capacity(self) -> int:
        """Trials kept in flight."""
        if self.config.synchronous:
            return 1
        if self.config.max_parallel_trials is not None:
            return self.config.max_parallel_trials
        return max(1, int(getattr(self.runner, "capacity", 1)))

    def run_optimization(self, max_trials: int) -> Any:
        """Launch ``max_trials`` new trials, keeping ``capacity`` in flight, and return the best
        parameters (one objective) or the Pareto-optimal ``{trial index: parameters}`` (several).

        Raises :class:`FailureRateExceededError` (after the trials in flight end) when more than
        ``tolerated_failure_rate`` of them failed.

        Ctrl-C once (or SIGTERM): no new trials start, the state is saved, and jobs that outlive
        the controller (scripts, containers, batch jobs) are left running for a resumed
        scheduler to follow; jobs that cannot (function jobs in local workers) are awaited, or on
        SIGTERM stopped and run again on resume. Ctrl-C again (at a terminal, within two seconds,
        or while waiting): the running jobs are canceled and their trials abandoned. Either way
        :class:`~aid2e.errors.CampaignInterrupted` (a ``KeyboardInterrupt``) is raised with a
        message saying what was left and how to resume.
        """
        if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 0:
            raise ConfigError(f"max_trials must be a non-negative integer, got {max_trials!r}")
        self._bridge_or_error()
        job = self._job_spec()
        self._start_runner()
        self._progress = self._make_progress(max_trials)
        self._begin_run(max_trials, lift_parallelism=True)
        try:
            self._resume_running()
            self._save_state(full=True)
            interruption = self._engine(job, budget=max_trials)
        except GenerationError as exc:  # the state is saved (below): say how to go on
            raise GenerationError(f"{exc}; the state is saved: after fixing it, aid2e resume "
                                  f"{self.experiment_dir}") from exc.__cause__
        finally:
            self._end_run()
        if interruption is not None:
            raise CampaignInterrupted(interruption.message(self.experiment_dir))
        if self._failure_rate_exceeded():
            raise FailureRateExceededError(self._failure_summary())
        return self.best_parameters()

    @contextlib.contextmanager
    def batch_trial_context(self) -> Iterator[Batch]:
        """Add trials with ``batch.add_trial(params)``; on exit they all run in parallel
        (up to ``capacity`` at once) and the context returns when all have ended.
        If the block raises, the added trials are abandoned and nothing runs."""
        batch = Batch(self)
        try:
            yield batch
        except BaseException:
            for index in batch.trial_indices:
                self._bridge_or_error().abandon(index, "batch_trial_context exited with an exception")
            raise
        self.run_trials({i: self._bridge_or_error().parameters_of(i) for i in batch.trial_indices})

    def run_trials(self, trials: Mapping[int, Mapping[str, Any]]) -> None:
        """Run already-created RUNNING Ax trials ``{index: parameters}`` until all have ended."""
        job = self._job_spec()
        self._start_runner()
        self._begin_run(len(trials))
        try:
            interruption = self._engine(job, budget=len(trials), given=trials)
        finally:
            self._end_run()
        if interruption is not None:
            raise CampaignInterrupted(interruption.message(self.experiment_dir))

    # ------------------------------------------------------------ the engine
    def _begin_run(self, total: int, *, lift_parallelism: bool = False) -> None:
        """Take the campaign (its lock, and its saved state when asked to continue it), cache
        what the loop needs from Ax, then hand Ax to its owner thread."""
        from .ax_owner import AxOwner

        self._check_output_dir()
        self._take_campaign(may_load=lift_parallelism)
        try:
            bridge = self._bridge_or_error()
            if lift_parallelism:
                bridge.lift_parallelism(self.capacity)
            self._check_runner_follows(self.runner)
            self._facts = _ExperimentFacts.of(bridge)
            self._stopping = False
            self._progress = self._make_progress(total)
            self._owner = AxOwner(bridge)
            self._owner.start()
        except BaseException:
            self._release_campaign()
            raise

    def _end_run(self) -> None:
        """Take Ax back from its owner thread; candidates generated but never launched are
        abandoned in Ax (so they do not count as pending), then the full state is saved and the
        campaign's lock released."""
        owner, self._owner = self._owner, None
        failing = sys.exc_info()[1] is not None
        try:
            leftovers = owner.stop() if owner is not None else []
            for index, _parameters in leftovers:
                self._bridge_or_error().abandon(index, "generated but not launched: the run ended first")
        finally:
            try:
                self._save_state(full=True)
            except StateWriteError:
                if not failing:
                    raise
                log.debug("saving the state again failed too", exc_info=True)  # the first error says it
            finally:
                self._progress.close()
                self._facts = None
                self._release_campaign()

    # ------------------------------------------------------------ ownership
    def _take_campaign(self, *, may_load: bool) -> None:
        """Lock the campaign directory for this run, and make sure this scheduler's trials are
        the ones saved there: a new campaign never writes over saved state (unless config
        ``load_if_exists`` asks to continue it), and a scheduler whose campaign another
        controller changed since it last saved must load it again."""
        where = self.experiment_dir
        lock = CampaignLock(where, self._campaign_id or "")  # where: absolute (resolved)
        lock.acquire()
        try:
            saved = _saved_identity(where)
            if not self._loaded and self._campaign_id is None:  # a new campaign
                if saved is not None and may_load and self.config.load_if_exists:
                    self._continue_saved(where)
                elif saved is not None or _has_trial_dirs(where):
                    raise ConfigError(_occupied_message(where, saved, self._facts_name()))
            elif saved is not None:
                if saved.campaign and self._campaign_id and saved.campaign != self._campaign_id:
                    raise ConfigError(
                        f"{where} holds another campaign (id {saved.campaign}, {saved.trials} trials) than the "
                        f"one loaded here (id {self._campaign_id}): resume that one with aid2e resume {where}, "
                        "or set config 'job_output_dir' to another directory")
                if self._known_saved_at is not None and saved.saved_at > self._known_saved_at:
                    raise ConfigError(
                        f"the campaign in {where} was saved after the state this scheduler last saved or loaded: "
                        f"running would overwrite newer trials; resume it (aid2e resume {where}, or "
                        "AxScheduler.resume(dir)), or set config 'job_output_dir' to another directory to branch off")
            if self._campaign_id is None:
                self._campaign_id = uuid.uuid4().hex
            lock.campaign = self._campaign_id
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    def _release_campaign(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _facts_name(self) -> str:
        return self._facts.name if self._facts is not None else self._bridge_or_error().name

    def _continue_saved(self, where: Path) -> None:
        """config ``load_if_exists``: continue the campaign saved in ``where`` (same parameters
        and objectives as this experiment, else a one-line error)."""
        state = _read_state(where)
        mine = self._bridge_or_error()
        from .ax_bridge import AxBridge

        try:
            theirs = AxBridge.from_snapshot(copy.deepcopy(state.ax))  # decoding consumes the snapshot
        except Exception as exc:
            raise ConfigError(f"{state.source}: the Ax snapshot in it cannot be read "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from exc
        for what, ours, saved in (("parameters", mine.parameter_names, theirs.parameter_names),
                                  ("objectives", mine.objective_names, theirs.objective_names)):
            if sorted(ours) != sorted(saved):
                raise ConfigError(
                    f"config 'load_if_exists': the campaign saved in {where} has {what} "
                    f"{', '.join(sorted(saved))} but this experiment has {', '.join(sorted(ours))}: "
                    "give this experiment a new name or another job_output_dir")
        self._apply_state(state, campaign_dir=where)
        log.info("continuing the campaign saved in %s (%d trials)", where, len(self.trials))

    def _check_runner_follows(self, runner: Any) -> None:
        """Trials in flight can only be followed by a runner of the backend they run on."""
        name = getattr(runner, "name", None)
        foreign = sorted(i for i, r in self.trials.items()
                         if r.status == "RUNNING" and r.handle is not None and r.handle.backend != name)
        if foreign:
            backends = sorted({self.trials[i].handle.backend for i in foreign})
            raise ConfigError(
                f"trial(s) {', '.join(map(str, foreign))} are still running as {'/'.join(backends)} jobs, which "
                f"{type(runner).__name__} cannot follow: resume with the runner they run on (AxScheduler.resume"
                "(path) rebuilds the saved one; aid2e resume does so too) and switch runners once they have ended")

    def _check_output_dir(self) -> None:
        """The experiment directory must be creatable and writable before anything runs."""
        where = self.experiment_dir
        try:
            atomic.private_dir(where)
            probe = where / ".aid2e-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"config 'job_output_dir' ({self.config.job_output_dir}): cannot write "
                              f"{where}: {exc.strerror or exc}") from None

    def _ax(self, function: Callable[..., Any], *args: Any) -> None:
        """Apply an outcome to Ax: on the owner thread during a run, inline otherwise."""
        if self._owner is not None:
            self._owner.report(function, *args)
        else:
            function(self._bridge_or_error(), *args)

    def _prefetch(self) -> int:
        """Candidates to keep ready beyond the free slots: a whole wave when they come from a
        quasi-random generator (data would not change them), a few when generation is slow."""
        owner = self._owner
        if owner is None or not owner.generations:
            return 0
        if owner.ignores_data:  # quasi-random: the next wave is ready when this one ends
            return self.capacity
        slow = owner.generation_seconds / owner.generations > SLOW_GENERATION
        return max(1, self.capacity // 4) if slow else 0

    def _engine(self, job: Any, *, budget: int,
                given: Mapping[int, Mapping[str, Any]] | None = None) -> _Interruption | None:
        """Keep every slot busy until ``budget`` trials from Ax (or the ``given`` ones) have run.

        Launching and completion handling never wait for a model fit (Ax works on its owner
        thread). The runner is polled when its ``wait`` reports a possible change or every
        ``min(monitoring_interval, runner.poll_interval)`` seconds. Returns what Ctrl-C or
        SIGTERM stopped (see :meth:`run_optimization`), or None.
        """
        owner = self._owner
        pending = list(given.items()) if given is not None else None
        launched = 0
        stop: _Interruption | None = None
        tick = self.config.monitoring_interval
        poll_every = min(tick, float(getattr(self.runner, "poll_interval", tick) or tick))
        last_poll = time.monotonic()
        with StopSignals() as signals:
            while True:
                try:
                    if signals.stop and stop is None:
                        stop = self._stop_launching(owner, signals)
                    if stop is not None and signals.presses >= 2 and self._running:
                        stop.canceled += len(self._running)
                        self.cancel_running("canceled by a second Ctrl-C")
                    self._enforce_timeout()
                    stop_launching = stop is not None or self._failure_rate_exceeded()
                    free = self.capacity - len(self._running)
                    if not stop_launching and free > 0:
                        if pending is not None:
                            batch, pending = pending[:free], pending[free:]
                        else:
                            batch = owner.take(min(free, budget - launched))
                        if batch:
                            self._launch(dict(batch), job)
                            launched += len(batch)
                            free -= len(batch)
                    if pending is None:
                        remaining = budget - launched
                        owner.want(0 if stop_launching else min(remaining, free + self._prefetch()))
                    wants_more = not stop_launching and (
                        bool(pending) if pending is not None
                        else launched < budget and not (owner.exhausted and not owner.ready_count))
                    if not self._running:
                        if not wants_more:
                            if stop is not None:
                                self._offer_cancel(stop, signals)
                                for index, _parameters in pending or ():  # given trials never launched
                                    self._ax(_abandon, index, f"not launched: {stop.signal} stopped the run")
                            return stop
                        if pending is None and owner.idle_without_candidates and not owner.exhausted:
                            raise Aid2eError(
                                "Ax generated no new trial while none is running; check the generation "
                                f"strategy (e.g. its trial limits) of experiment {self._facts.name!r}"
                            )
                    waiting_for_ax = pending is None and wants_more and free > 0
                    if self._running:
                        timeout = max(0.0, poll_every - (time.monotonic() - last_poll))
                        timeout = min(timeout, AX_WAIT_SLICE if waiting_for_ax else CHECK_INTERVAL)
                        changed = self._wait_for_jobs(timeout)
                        if changed or time.monotonic() - last_poll >= poll_every:
                            last_poll = time.monotonic()
                            if self._poll_and_finish():
                                self._save_state()
                    elif waiting_for_ax:
                        owner.wait_ready(min(tick, CHECK_INTERVAL))
                except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                    signals.press()

    def _stop_launching(self, owner: Any, signals: StopSignals) -> _Interruption:
        """First Ctrl-C or SIGTERM: stop launching, let go of the jobs that outlive this process
        (their records stay RUNNING with their handles, for a resumed scheduler), save."""
        self._stopping = True
        if owner is not None:
            owner.want(0)
        stop = _Interruption(signal="SIGTERM" if signals.terminated and not signals.presses else "Ctrl-C")
        for index, handle in list(self._running.items()):
            if _ask(self.runner, "outlives_controller", handle, False):
                del self._running[index]
                stop.left_running.append(index)
            elif signals.terminated:  # the process is about to end: stop it, run it again on resume
                with contextlib.suppress(Exception):
                    self.runner.cancel(handle)
                del self._running[index]
                self.trials[index].handle = None
                stop.rerun.append(index)
                if not _ask(self.runner, "cancel_stops", handle, True):
                    stop.not_stopped += 1
        self._save_state()
        if self._running:
            stop.awaited = len(self._running)
            log.warning("%s: no new trials start; waiting for %d running trial(s) whose jobs cannot outlive "
                        "this process. Press Ctrl-C again to cancel them. State is saved in %s",
                        stop.signal, len(self._running), self.experiment_dir)
        return stop

    def _offer_cancel(self, stop: _Interruption, signals: StopSignals) -> None:
        """At a terminal, give a second Ctrl-C a moment to cancel the jobs left running."""
        grace = second_press_grace()
        if not stop.left_running or grace <= 0 or signals.terminated:
            return
        log.warning("%d trial(s) are left running as jobs; press Ctrl-C again within %g s to cancel them",
                    len(stop.left_running), grace)
        deadline = time.monotonic() + grace
        while signals.presses < 2 and time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except KeyboardInterrupt:
                signals.press()
        if signals.presses >= 2:
            for index in stop.left_running:
                self._running[index] = self.trials[index].handle
            stop.canceled += len(stop.left_running)
            stop.left_running.clear()
            self.cancel_running("canceled by a second Ctrl-C")

    def _start_runner(self) -> None:
        if not self._started:
            self.runner.start()
            self._started = True

    def _adapter_for(self, kind: str) -> JobAdapter | None:
        """``None`` if the runner runs ``kind`` natively, else the adapter that makes it runnable."""
        kinds = frozenset(getattr(self.runner, "kinds", frozenset()))
        if kind in kinds:
            return None
        adapter = get_plugin_manager().job_adapter(kind, kinds)
        if adapter is not None:
            return adapter
        raise ConfigError(
            f"{type(self.runner).__name__} cannot run {kind} jobs (it runs: "
            f"{', '.join(sorted(kinds))}) and no installed plugin adapts them"
        )

    def _set_objective(self, make_spec: Callable[[], Any], spec: Any = None) -> None:
        """Use ``make_spec()`` for every trial, after checking now what can be checked:
        that the runner can run the kind, and the adapter's own ``check``."""
        if spec is not None:
            adapter = self._adapter_for(spec.kind)
            if adapter is not None and adapter.check is not None:
                adapter.check(spec, self.runner)
        self._objective = make_spec

    def _adapt(self, request: JobRequest) -> JobRequest:
        adapter = self._adapter_for(request.job.kind)
        return request if adapter is None else adapter.adapt(request, self.runner)

    def _launch(self, trials: Mapping[int, Mapping[str, Any]], job: Any) -> None:
        """Submit trials ``{index: parameters}``. Their records are saved before submission
        (no handle yet) and again with their handles, so no job ever runs unrecorded."""
        for index, parameters in trials.items():
            self.trials[index] = TrialRecord(index=index, parameters=dict(parameters), token=_new_token())
        self._save_state()
        for index in trials:
            self._submit(index, job)
        self._save_state()

    def attempt_dir(self, index: int) -> Path:
        """Where the current attempt of trial ``index`` runs: its trial directory, and for a
        retry ``trial_<i>/attempt_<n>/``, so an earlier attempt that was given up for lost
        (a node cut off, not dead) cannot write into the files of the one that replaced it."""
        attempts = self.trials[index].attempts if index in self.trials else 1
        base = self.trial_dir(index)
        return base if attempts <= 1 else base / f"attempt_{attempts}"

    def _request(self, index: int, job: Any) -> JobRequest:
        """The (adapted) job request of trial ``index``."""
        request = JobRequest(
            experiment=self._facts_now().name,
            trial_index=index,
            parameters=dict(self.trials[index].parameters),
            job=job,
            workdir=str(self.attempt_dir(index)),
            resources=self.config.trial_resources(),
            token=self.trials[index].token,
        )
        return self._adapt(request)

    def _with_token(self, index: int, handle: JobHandle, labels: Mapping[str, str] | None = None) -> JobHandle:
        """``handle`` carrying the trial's attempt token (backends check files against it)."""
        token = self.trials[index].token
        extra = {**handle.extra, **(labels or {})}
        if token:
            extra["token"] = token
        return attrs.evolve(handle, extra=extra) if extra != handle.extra else handle

    def _submit(self, index: int, job: Any) -> None:
        record = self.trials[index]
        record.started_at = time.time()
        self._running_since.pop(index, None)
        try:
            request = self._request(index, job)
            atomic.private_dir(request.workdir)
            # a marker for people and tools: the token's durable copy is the record saved (fsynced) before
            atomic.write_json(Path(request.workdir) / ATTEMPT_FILE, {
                "campaign": self._campaign_id, "trial": index, "attempt": record.attempts, "token": record.token},
                sync=False)
            handle = self.runner.submit(request)
            record.handle = self._with_token(index, handle, request.labels)
        except (SubmitError, ConfigError, OSError) as exc:
            self._finish(index, JobResult(state=JobState.FAILED, message=f"could not submit the job: {exc}"))
            if isinstance(exc, ConfigError):
                raise
            return
        self._running[index] = record.handle
        log.info("trial %d started (%s %s)", index, record.handle.backend, record.handle.native_id)
        self._show_progress()

    def _collect(self, timeout: float) -> bool:
        """Wait for jobs to end, report the ended ones to Ax; True if any ended."""
        self._wait_for_jobs(timeout)
        return self._poll_and_finish()

    def _wait_for_jobs(self, timeout: float) -> bool:
        """The runner's ``wait``; while polling fails, a plain pause of ``timeout`` instead: the
        runner may keep reporting a change (a job it saw end) and every poll would ask the batch
        system again, hundreds of times a second."""
        if self._poll_failing:
            time.sleep(max(0.0, timeout))
            return False
        return self.runner.wait(list(self._running.values()), timeout)

    def _poll_and_finish(self) -> bool:
        """Poll every running job once; report the ended ones to Ax. True if any ended."""
        handles = list(self._running.values())
        try:
            states = self.runner.poll(handles)
        except Exception as exc:  # a batch system hiccup must not lose the campaign
            log.warning("polling %s failed, will retry: %s", type(self.runner).__name__, exc)
            self._poll_failing = True
            return False
        self._poll_failing = False
        ended = False
        for index, handle in list(self._running.items()):
            state = states.get(handle.native_id)
            if state is JobState.ACTIVE:
                self._running_since.setdefault(index, time.time())
            if state is None or not state.is_final:
                continue
            try:
                result = self.runner.result(handle)
            except Exception as exc:
                result = JobResult(state=JobState.FAILED, message=f"could not read the job's result: {exc}")
            self._finish(index, result)
            ended = True
        return ended

    def _finish(self, index: int, result: JobResult) -> None:
        """Report one ended job to Ax and record it."""
        facts = self._facts_now()
        record = self.trials[index]
        self._running.pop(index, None)
        record.ended_at = time.time()
        ran_since = self._running_since.pop(index, record.started_at)
        if index in self._timed_out:
            self._timed_out.discard(index)
            result = JobResult(state=JobState.FAILED, exit_code=result.exit_code,
                               message=f"trial exceeded trial_timeout={self.config.trial_timeout:g} s and was "
                               f"canceled (ran {record.ended_at - ran_since:.0f} s)")
        if (result.state is JobState.FAILED and result.retryable and self._job is not None
                and record.attempts <= self.config.max_retries):
            _new_attempt(record)
            record.ended_at = None
            record.message = f"attempt {record.attempts - 1} failed: {result.message}"
            if self._stopping:
                # after Ctrl-C nothing is launched: the retry is left for a resumed scheduler
                record.message += "; runs again on resume"
                self._save_state()
                return
            log.warning("trial %d: %s; running it again (attempt %d of %d)", index,
                        result.message.splitlines()[0] if result.message else "infrastructure failure",
                        record.attempts, self.config.max_retries + 1)
            self._save_state()  # the retry's attempt and token are on disk before its job exists
            self._submit(index, self._job)
            return
        if result.state is JobState.COMPLETED and result.infeasible is not None:
            reason = f"infeasible: {result.infeasible}"
            self._ax(_abandon, index, reason)
            record.status, record.message = "ABANDONED", reason
            log.info("trial %d is infeasible: %s", index, result.infeasible)
            self._show_progress()
            return
        if result.state is JobState.COMPLETED:
            missing = [m for m in facts.objective_names if m not in result.metrics]
            if missing:
                result = JobResult(
                    state=JobState.FAILED,
                    exit_code=result.exit_code,
                    message=f"result lacks objective metric(s) {', '.join(map(repr, missing))} "
                    f"(got {', '.join(map(repr, sorted(result.metrics))) or 'none'})",
                )
            else:
                result = _refuse_what_ax_cannot_take(result, facts.metric_names, self.trials.values())
        if result.state is JobState.COMPLETED:
            known = facts.metric_names
            metrics = {k: v for k, v in result.metrics.items() if k in known}
            extra = sorted(set(result.metrics) - known)
            if extra:
                log.debug("trial %d: ignoring metrics Ax does not know: %s", index, extra)
            self._ax(_complete, index, metrics)
            record.status, record.metrics = "COMPLETED", metrics
            log.info("trial %d completed: %s", index, {k: v.mean for k, v in metrics.items()})
            if self.config.cleanup_after_completion:
                shutil.rmtree(self.trial_dir(index), ignore_errors=True)
        elif result.state is JobState.CANCELED and index in self._canceled_by_us:
            reason = self._canceled_by_us.pop(index)
            self._ax(_abandon, index, reason)
            record.status, record.message = "ABANDONED", reason
        else:
            reason = _shorten(result.message or f"job ended {result.state.value}")
            if result.state is JobState.CANCELED:
                reason = f"job was canceled outside aid2e: {reason}"
            self._ax(_fail, index, reason)
            record.status, record.message = "FAILED", reason
            log.warning("trial %d failed: %s", index, reason.splitlines()[0] if reason else "")
        self._show_progress()

    def _enforce_timeout(self) -> None:
        """Cancel trials running longer than ``trial_timeout`` (they end as FAILED, saying so),
        timed from the first poll that saw their job running: time spent queued (in a batch
        queue, or behind busy workers) does not count."""
        limit = self.config.trial_timeout
        if limit is None:
            return
        now = time.time()
        for index, handle in list(self._running.items()):
            since = self._running_since.get(index)
            if index not in self._timed_out and since is not None and now - since > limit:
                self._timed_out.add(index)
                log.warning("trial %d exceeded trial_timeout=%g s: canceling it", index, limit)
                try:
                    self.runner.cancel(handle)
                except Exception as exc:
                    log.warning("could not cancel trial %d: %s", index, exc)

    def _facts_now(self) -> _ExperimentFacts:
        if self._facts is None:
            return _ExperimentFacts.of(self._bridge_or_error())
        return self._facts

    def _resume_running(self) -> None:
        """Trials saved as RUNNING (a loaded experiment) are polled again through their handles;
        those saved just before their submission are adopted (the backend finds the job under
        the attempt's token) or submitted. A campaign loaded from another directory than it was
        saved in (moved or copied) cannot follow jobs that write into the old one: those trials
        run again here as a new attempt, unless their job had already ended here. (``_begin_run``
        has checked that the runner can follow the rest.)"""
        for index, record in self.trials.items():
            if record.status != "RUNNING" or index in self._running:
                continue
            workdir = record.handle.workdir if record.handle is not None else self.attempt_dir(index)
            if self._relocated_from is not None and not (record.token and ended_under(workdir, record.token)):
                log.warning("trial %d: its job writes into %s, not into %s (the campaign was moved or copied): "
                            "running it again here", index, self._relocated_from, self.experiment_dir)
                _new_attempt(record)
                self._save_state()
            handle = record.handle
            if handle is not None:
                self._running[index] = handle
                continue
            # saved just before its submission: did the submission happen?
            adopted = self.runner.adopt(self._request(index, self._job)) if hasattr(self.runner, "adopt") else None
            if adopted is not None:
                log.info("trial %d: found its job %s, following it", index, adopted.native_id)
                record.handle = self._with_token(index, adopted)
                self._running[index] = record.handle
            else:
                log.info("trial %d was saved but never submitted: submitting it now", index)
                self._submit(index, self._job)

    def cancel_running(self, reason: str = "canceled by aid2e", timeout: float = 60.0) -> None:
        """Cancel every job in flight and abandon their trials in Ax (with ``reason``).

        Jobs that do not report their end within ``timeout`` seconds are abandoned anyway.
        """
        for index, handle in list(self._running.items()):
            self._canceled_by_us[index] = reason
            try:
                self.runner.cancel(handle)
            except Exception as exc:
                log.warning("could not cancel trial %d: %s", index, exc)
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            self._collect(min(1.0, max(0.0, deadline - time.monotonic())))
        for index in list(self._running):
            self._finish(index, JobResult(state=JobState.CANCELED,
                                          message=f"{reason}; the job did not confirm its end"))
        self._save_state()

    # ------------------------------------------------------------ failures
    def _counts(self) -> dict[str, int]:
        counts = {"COMPLETED": 0, "FAILED": 0, "RUNNING": 0, "ABANDONED": 0}
        for record in self.trials.values():
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts

    def _failure_rate_exceeded(self) -> bool:
        counts = self._counts()
        finished = counts["COMPLETED"] + counts["FAILED"]
        return counts["FAILED"] > self.config.tolerated_failure_rate * max(finished, MIN_FINISHED_FOR_RATE)

    def _failure_summary(self) -> str:
        counts = self._counts()
        failed = [r for r in self.trials.values() if r.status == "FAILED"]
        last = failed[-1].message.splitlines()[0] if failed and failed[-1].message else ""
        return (
            f"{counts['FAILED']} of {counts['FAILED'] + counts['COMPLETED']} trials failed, more than "
            f"tolerated_failure_rate={self.config.tolerated_failure_rate}; last reason: {last} "
            f"(trial directories under {self.experiment_dir})"
        )

    # ------------------------------------------------------------ answers
    def best_parameters(self) -> Any:
        """Best observed parameters (one objective), Pareto ``{index: params}`` (several),
        or ``None`` if no trial completed."""
        bridge = self._bridge_or_error()
        if bridge.is_multi_objective:
            return bridge.pareto()
        return bridge.best()

    def _best_text(self) -> str | None:
        facts = self._facts
        if facts is None or not facts.minimize:
            return None
        name = facts.objective_names[0]
        values = [r.metrics[name].mean for r in self.trials.values() if name in r.metrics]
        if not values:
            return None
        best = min(values) if facts.minimize[name] else max(values)
        return f"{name}={best:.6g}"

    def _make_progress(self, total: int) -> Any:
        from .progress import Progress

        return Progress(total)

    def _show_progress(self) -> None:
        if self._progress is None:
            return
        counts = self._counts()
        self._progress.update(completed=counts["COMPLETED"], running=len(self._running),
                              failed=counts["FAILED"], best=self._best_text())

    # ------------------------------------------------------------ persistence
    def _trials_json(self) -> str:
        """The scheduler part of the state (config, runner, objective, every trial's record) as
        JSON text. A finished trial's record never changes, so its text is made once and reused:
        saving after each change costs O(trials in flight), not O(all trials)."""
        head: dict[str, Any] = {"config": self.config.to_dict(), "runner": _describe_runner(self.runner),
                                "campaign": {"id": self._campaign_id, "dir": str(self.experiment_dir)}}
        if self._job is not None:
            head["objective"] = serialize.dump_job(self._job)
        home = self.experiment_dir
        records = ", ".join(self._record_json(r, home) for r in self.trials.values())
        return f'{json.dumps(head)[:-1]}, "trials": [{records}]}}'

    def _record_json(self, record: TrialRecord, home: Path) -> str:
        cached = self._record_texts.get(record.index)
        if cached is not None and cached[0] is record:
            return cached[1]
        text = json.dumps(_record_to_json(record, home))
        if record.status != "RUNNING":
            self._record_texts[record.index] = (record, text)
        return text

    def _save_state(self, *, full: bool = False) -> None:
        """Save the state under ``experiment_dir`` atomically.

        Every call rewrites ``trials.json`` (each trial's parameters, status, result and job
        handle; finished records are encoded once: about a millisecond at 1000 trials). The Ax
        snapshot ``experiment.json`` costs more as the experiment grows, so it is rewritten when
        ``full`` or after ``snapshot_interval`` seconds; loading replays ``trials.json`` onto
        it, so no change is lost.
        """
        if self._bridge is None:
            return
        store = FileStore(self.experiment_dir)
        # both files carry the time their trial records were taken (never earlier than the last)
        captured_at = max(time.time(), (self._known_saved_at or 0.0) + 1e-6)
        records = self._trials_json()
        store.write_text(TRIALS_KEY, _document_json(records, captured_at))
        self._known_saved_at = captured_at
        now = time.monotonic()
        if full or now - self._last_snapshot >= self.config.snapshot_interval:
            self._last_snapshot = now
            if self._owner is not None:  # Ax is busy on its thread: it writes the snapshot there
                self._owner.report(_write_snapshot, store, records, captured_at)
            else:
                _write_snapshot(self._bridge, store, records, captured_at)

    @classmethod
    def resume(cls, path: str, runner: Backend | None = None,
               config: Mapping[str, Any] | None = None) -> AxScheduler:
        """A scheduler for the campaign saved under ``path`` (the state directory
        ``<job_output_dir>/<experiment name>/`` a running scheduler keeps, or a saved file).

        The runner is rebuilt from the state unless given; ``config`` overrides saved keys. Script
        and container objectives are restored; a function objective when it is importable by
        module path (otherwise call ``set_objective_function`` again: the error says so). The
        next ``run_optimization`` first follows the trials that were in flight.
        """
        where = Path(path).expanduser()
        if where.is_dir():
            refuse_if_held(where)
        state = _read_state(where)
        saved = state.scheduler
        if runner is None:
            runner = _rebuild_runner(saved.get("runner"))
        known = {f.name for f in attrs.fields(SchedulerConfig)}
        merged = {k: v for k, v in (saved.get("config") or {}).items() if k in known}
        if where.is_dir():
            merged["job_output_dir"] = str(where.resolve().parent)
        merged.update(config or {})
        scheduler = cls(None, runner, merged)
        scheduler._apply_state(state, campaign_dir=where.resolve() if where.is_dir() else None)
        scheduler._check_runner_follows(runner)
        scheduler._restore_objective(saved.get("objective"))
        return scheduler

    def _restore_objective(self, data: Mapping[str, Any] | None) -> None:
        if data is None:
            self._objective_hint = ("the saved state holds no objective: call set_objective_function, "
                                    "set_script_objective or set_container_objective")
            return
        try:
            spec = serialize.load_job(dict(data))
            self._set_objective(lambda: spec, spec)
        except ConfigError as exc:
            self._objective_hint = (f"the saved objective cannot be restored ({exc}); call "
                                    "set_objective_function(...) again before run_optimization")

    def save_experiment(self, path: str) -> None:
        """Write the Ax experiment and this scheduler's trial records to one JSON file, atomically."""
        text = _document_json(self._trials_json(), time.time(), self._bridge_or_error().snapshot())
        atomic.write_bytes(path, text.encode())

    def load_experiment(self, path: str) -> None:
        """Load what :meth:`save_experiment` wrote, or a run's saved state (its experiment
        directory ``<job_output_dir>/<name>/``). Replaces this scheduler's experiment and trial
        records; trials saved as RUNNING are followed again through their job handles by the
        next run."""
        where = Path(path).expanduser()
        self._apply_state(_read_state(where), campaign_dir=where.resolve() if where.is_dir() else None)

    def _apply_state(self, state: _SavedState, campaign_dir: Path | None = None) -> None:
        """Rebuild the Ax experiment from ``state`` and bring it up to its trial records.

        ``campaign_dir``: the directory the state was read from, where the campaign now lives
        (trial directories are saved relative to it); None for a ``save_experiment`` file,
        whose campaign lives under this scheduler's ``job_output_dir``.
        """
        from .ax_bridge import AxBridge

        try:
            bridge = AxBridge.from_snapshot(state.ax)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{state.source}: the Ax snapshot in it cannot be read "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from None
        campaign = state.scheduler.get("campaign") if isinstance(state.scheduler.get("campaign"), dict) else {}
        self._campaign_dir = campaign_dir
        self._bridge = bridge  # experiment_dir needs the experiment's name
        home = self.experiment_dir
        saved_dir = campaign.get("dir") if isinstance(campaign.get("dir"), str) else None
        records = _records_from_state(state, home, saved_dir)
        # An older aid2e gave Ax results it cannot take (e.g. a metric with and without sem):
        # those trials become FAILED, so the campaign resumes instead of failing at generation.
        refused = data_checks.refused_records(records)
        try:
            for record in records:
                if record.index in refused:
                    record.status, record.message = "FAILED", f"result refused on resume: {refused[record.index]}"
                    log.warning("trial %d: %s", record.index, record.message)
                bridge.sync_trial(record.index, record.parameters, record.status, record.metrics, record.message)
        except Exception as exc:
            raise ConfigError(f"{state.records_source or state.source}: trial {record.index}'s record does not fit "
                              "the experiment "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from exc
        self.trials = {record.index: record for record in records}
        self._campaign_id = campaign.get("id") if isinstance(campaign.get("id"), str) else None
        self._relocated_from = saved_dir if saved_dir and not _same_dir(saved_dir, home) else None
        self._known_saved_at = state.saved_at
        self._loaded = True
        self._record_texts = {}
        if state.ax.get("data") is None:  # format 1: Ax's own snapshot kept 10 decimals
            bridge.restore_exact_data({i: r.metrics for i, r in self.trials.items() if r.status == "COMPLETED"})
        for index in refused:
            bridge.retract(index, self.trials[index].message)
        # Trials Ax generated after the last record was saved never ran (records are saved before
        # submission): abandon them so they do not stay pending in Ax for ever.
        for index in bridge.unfinished_trials():
            if index not in self.trials:
                bridge.abandon(index, "generated but never launched: the controller stopped first")
        self._facts = None
        self._running = {}


@define
class _Interruption:
    """What a Ctrl-C or SIGTERM did to a run, for the message raised at its end."""

    signal: str
    left_running: list[int] = field(factory=list)  # jobs that outlive the controller, left alone
    rerun: list[int] = field(factory=list)  # stopped at SIGTERM; submitted again on resume
    not_stopped: int = 0  # of those, given up but still running (the runner cannot stop them)
    awaited: int = 0  # jobs that could not be left, waited for
    canceled: int = 0  # canceled by a second Ctrl-C

    def message(self, experiment_dir: Path) -> str:
        parts = [f"{self.signal}: no new trials were launched"]
        if self.left_running:
            parts.append(f"{len(self.left_running)} trial(s) left running as jobs "
                         f"({', '.join(map(str, self.left_running))})")
        stopped = len(self.rerun) - self.not_stopped
        if stopped:
            parts.append(f"{stopped} function trial(s) stopped; they run again on resume")
        if self.not_stopped:
            parts.append(f"{self.not_stopped} function trial(s) given up but not stopped (they run in threads, "
                         "which cannot be stopped: until they return or this process exits); they run again "
                         "on resume")
        if self.awaited:
            parts.append(f"{self.awaited} trial(s) that could not be left were waited for")
        if self.canceled:
            parts.append(f"{self.canceled} running trial(s) canceled (abandoned in Ax)")
        return ("; ".join(parts) + f". State saved in {experiment_dir}; resume with: aid2e resume "
                f"{experiment_dir} --max-trials K (or AxScheduler.resume(path, runner) in Python)")


def _ask(runner: Any, question: str, handle: JobHandle, default: bool) -> bool:
    """The runner's answer to an optional yes/no method about a job (``outlives_controller``,
    ``cancel_stops``), or ``default`` if it has none or it fails."""
    check = getattr(runner, question, None)
    try:
        return bool(check(handle)) if callable(check) else default
    except Exception:  # a third-party backend's bug must not turn Ctrl-C into a crash
        log.debug("%s failed", question, exc_info=True)
        return default


@define(frozen=True)
class _SavedState:
    """What a state directory or saved file holds: the Ax snapshot, and the newest trial records
    (``trials.json`` when it was saved after ``experiment.json``)."""

    source: Path
    ax: dict[str, Any]
    scheduler: dict[str, Any]
    saved_at: float | None = None
    records_source: Path | None = None  # the file the trial records came from (default: source)


def _read_state(path: Path) -> _SavedState:
    """Read a save_experiment file or a run directory once; anything damaged is a one-line
    ConfigError naming the file (the same reader as ``aid2e status``)."""
    if not path.is_dir():
        document = _read_document(path, required=True)
        return _SavedState(source=path, ax=document["ax"], scheduler=document["scheduler"],
                           saved_at=state_files.saved_at(document))
    trials_doc = _read_document(path / f"{TRIALS_KEY}.json", required=False, needs_ax=False)
    source = path / f"{STATE_KEY}.json"
    document = _read_document(source, required=True)
    newer = trials_doc is not None and state_files.saved_at(trials_doc) >= state_files.saved_at(document)
    chosen = trials_doc if newer else document
    return _SavedState(source=source, ax=document["ax"], scheduler=chosen["scheduler"],
                       saved_at=state_files.saved_at(chosen),
                       records_source=path / f"{TRIALS_KEY}.json" if newer else source)


def _read_document(source: Path, *, required: bool, needs_ax: bool = True) -> dict[str, Any] | None:
    if not required and not os.path.lexists(source):
        return None
    if not os.path.lexists(source):
        raise ConfigError(f"experiment file not found: {source}")
    document = state_files.read_document(source)
    if needs_ax and not isinstance(document.get("ax"), dict):
        raise ConfigError(f"{source} is damaged: it has no 'ax' part (the Ax experiment)")
    if not isinstance(document["scheduler"].get("config", {}), dict):
        raise ConfigError(f"{source} is damaged: its 'config' is not an object")
    return document


def _records_from_state(state: _SavedState, home: Path, saved_dir: str | None) -> list[TrialRecord]:
    """The trial records of ``state``, checked (one-line ConfigError naming the record), with
    their trial directories placed under ``home``, the directory the campaign now lives in."""
    where = state.records_source or state.source
    records: dict[int, TrialRecord] = {}
    for position, data in enumerate(state.scheduler["trials"]):
        try:
            record = _record_from_json(data, home, saved_dir)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(f"{where}: trial record #{position} is malformed: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if record.index in records:
            raise ConfigError(f"{where}: trial {record.index} has two records (#{position} and an "
                              "earlier one): the file was edited or damaged; restore it from a backup")
        records[record.index] = record
    return [records[i] for i in sorted(records)]


def _same_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _new_token() -> str:
    return uuid.uuid4().hex


def _new_attempt(record: TrialRecord) -> None:
    """Make ``record`` a new attempt of its trial: a new token and no job yet (save it before
    submitting, so the attempt's token is on disk before its job exists)."""
    record.attempts += 1
    record.token, record.handle = _new_token(), None


@define(frozen=True)
class _SavedIdentity:
    """Whose campaign a directory holds: what a new run checks before it writes there."""

    campaign: str | None
    saved_at: float
    trials: int


def _saved_identity(where: Path) -> _SavedIdentity | None:
    """The campaign saved in ``where`` (newest of its two state files), or None if none is."""
    found = [state_files.read_document(path) for path in (where / f"{TRIALS_KEY}.json", where / f"{STATE_KEY}.json")
             if os.path.lexists(path)]
    if not found:
        return None
    newest = max(found, key=state_files.saved_at)
    campaign = newest["scheduler"].get("campaign")
    campaign_id = campaign.get("id") if isinstance(campaign, dict) else None
    return _SavedIdentity(campaign=campaign_id if isinstance(campaign_id, str) else None,
                          saved_at=state_files.saved_at(newest), trials=len(newest["scheduler"]["trials"]))


def _has_trial_dirs(where: Path) -> bool:
    try:
        return any(entry.name.startswith("trial_") for entry in os.scandir(where))
    except OSError:
        return False


def _occupied_message(where: Path, saved: _SavedIdentity | None, name: str) -> str:
    what = (f"the saved campaign {name!r} ({saved.trials} trials)" if saved is not None
            else "trial directories of an earlier run (and no saved state)")
    return (f"{where} already holds {what}; continue it with aid2e resume {where} (or "
            "AxScheduler.resume(dir), or config 'load_if_exists': True), or give the experiment a new name or "
            "another config 'job_output_dir'")


@define(frozen=True)
class _ExperimentFacts:
    """What the loop needs to know of the Ax experiment, read once before Ax goes to its thread."""

    name: str
    objective_names: tuple[str, ...]
    metric_names: frozenset[str]
    minimize: dict[str, bool]  # empty for several objectives

    @classmethod
    def of(cls, bridge: Any) -> _ExperimentFacts:
        return cls(
            name=bridge.name,
            objective_names=tuple(bridge.objective_names),
            metric_names=frozenset(bridge.metric_names),
            minimize={} if bridge.is_multi_objective else {m: bridge.minimize(m) for m in bridge.objective_names},
        )


def _refuse_what_ax_cannot_take(result: JobResult, known: frozenset[str], records: Any) -> JobResult:
    """``result``, or a FAILED one saying why Ax cannot take its metrics (see
    :mod:`aid2e.data_checks`; ``records`` are the trial records, for each metric's convention)."""
    metrics = {k: v for k, v in result.metrics.items() if k in known}
    problem = data_checks.result_problem(metrics, data_checks.metric_conventions(records, metrics))
    if problem is None:
        return result
    return JobResult(state=JobState.FAILED, exit_code=result.exit_code, message=f"result refused: {problem}")


def _complete(bridge: Any, index: int, metrics: Mapping[str, Measurement]) -> None:
    bridge.complete(index, metrics)


def _complete_many(bridge: Any, completions: list[tuple[int, Mapping[str, Measurement]]]) -> None:
    bridge.complete_many(dict(completions))


_complete.many = _complete_many  # type: ignore[attr-defined]  # the owner thread batches a wave


def _fail(bridge: Any, index: int, reason: str) -> None:
    bridge.fail(index, reason)


def _abandon(bridge: Any, index: int, reason: str) -> None:
    bridge.abandon(index, reason)


def _document_json(records_json: str, saved_at: float, ax: Any = None) -> str:
    """A state file's text around the scheduler part ``records_json`` (already JSON), with Ax's
    snapshot ``ax`` when given. ``saved_at`` is when the trial records were taken, not when the
    file is written: the Ax thread writes snapshots later, and a ``trials.json`` written in
    between must still count as newer."""
    head = json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION, "saved_at": saved_at})[:-1]
    tail = "" if ax is None else f', "ax": {json.dumps(ax)}'
    return f'{head}, "scheduler": {records_json}{tail}}}'


def _write_snapshot(bridge: Any, store: FileStore, records_json: str, captured_at: float) -> None:
    store.write_text(STATE_KEY, _document_json(records_json, captured_at, bridge.snapshot()))


def _directory_name(experiment: str) -> str:
    """The experiment's directory name, one per name (distinct names never share a directory)
    and always inside job_output_dir: '%', '/' and NUL are written as %XX, and '', '.' and
    '..' as '%', '%2E' and '%2E%2E'. Names without those characters are used as they are."""
    if experiment in ("", ".", ".."):
        return "%" + "%2E" * len(experiment) if experiment else "%"
    return re.sub(r"[%/\x00]", lambda m: f"%{ord(m.group()):02X}", experiment)


#: Longest failure reason kept (Ax, trials.json, logs): the head and the tail of longer ones.
MAX_REASON = 4000


def _shorten(text: str, limit: int = MAX_REASON) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2 - 20
    return f"{text[:half]} ... [{len(text) - 2 * half} characters cut] ... {text[-half:]}"


def _describe_runner(runner: Any) -> dict[str, Any]:
    """What a later ``AxScheduler.resume`` needs to rebuild the runner (``to_config()`` gives
    the constructor's keyword arguments; runners without it must be passed to resume)."""
    to_config = getattr(runner, "to_config", None)
    return {
        "backend": getattr(runner, "name", ""),
        "class": f"{type(runner).__module__}:{type(runner).__qualname__}",
        "kwargs": to_config() if callable(to_config) else None,
    }


def _rebuild_runner(description: Mapping[str, Any] | None) -> Any:
    if not description or description.get("kwargs") is None:
        raise ConfigError("the saved state does not say how to rebuild its runner: pass one, "
                          "AxScheduler.resume(path, runner)")
    module_name, _, qualname = str(description["class"]).partition(":")
    try:
        import importlib

        factory: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            factory = getattr(factory, part)
        return factory(**description["kwargs"])
    except (ImportError, AttributeError, TypeError) as exc:
        raise ConfigError(f"cannot rebuild the saved runner {description['class']} ({exc}); pass one, "
                          "AxScheduler.resume(path, runner)") from None


def _record_to_json(record: TrialRecord, home: Path) -> dict[str, Any]:
    """A trial record as JSON; its trial directory relative to ``home`` (the campaign
    directory) when it lies inside it, so a moved or copied campaign finds its own."""
    data = attrs.asdict(record, recurse=False)
    if record.handle is not None:
        data["handle"] = serialize.to_json(record.handle)
        workdir = Path(record.handle.workdir)
        if workdir.is_absolute() and workdir.is_relative_to(home):
            data["handle"]["workdir"] = str(workdir.relative_to(home))
    data["metrics"] = {k: serialize.to_json(v) for k, v in record.metrics.items()}
    return data


def _record_from_json(data: Mapping[str, Any], home: Path, saved_dir: str | None = None) -> TrialRecord:
    """The inverse of :func:`_record_to_json`: a relative trial directory is placed under
    ``home`` (so is an absolute one inside ``saved_dir``, the directory it was saved in)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    values = dict(data)
    if isinstance(values.get("index"), bool) or not isinstance(values.get("index"), int):
        raise TypeError(f"'index' must be an integer, got {values.get('index')!r}")
    if not isinstance(values.get("parameters"), dict):
        raise TypeError("'parameters' must be an object")
    if values.get("status", "RUNNING") not in ("RUNNING", "COMPLETED", "FAILED", "ABANDONED"):
        raise ValueError(f"unknown 'status' {values.get('status')!r}")
    handle = values.get("handle")
    if handle:
        handle = serialize.from_json(handle, JobHandle)
        workdir = Path(handle.workdir)
        if not workdir.is_absolute():
            handle = attrs.evolve(handle, workdir=str(home / workdir))
        elif saved_dir and workdir.is_relative_to(saved_dir):
            handle = attrs.evolve(handle, workdir=str(home / workdir.relative_to(saved_dir)))
    values["handle"] = handle or None
    values["metrics"] = {k: serialize.from_json(v, Measurement) for k, v in (values.get("metrics") or {}).items()}
    return TrialRecord(**values)


__all__ = ["AxScheduler", "Batch", "TrialRecord"]
