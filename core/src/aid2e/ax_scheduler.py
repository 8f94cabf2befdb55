"""``AxScheduler``: the facade users drive — an Ax experiment, a backend, and a campaign directory.

It binds what one trial runs (``set_objective_function`` / ``set_script_objective`` /
``set_container_objective``, kept by :mod:`aid2e.objective`), takes the campaign for a run
(:mod:`aid2e.campaign`), hands Ax to its owner thread (:mod:`aid2e.ax_owner`) and runs the trial
loop (:mod:`aid2e.loop`) over the trial book (:mod:`aid2e.trials`), whose records the state
writer saves after every change (:mod:`aid2e.state_writer`) under
``<job_output_dir>/<experiment name>/``; ``resume`` and ``load_experiment`` read them back
(:mod:`aid2e.state_loader`). How a job's result becomes a trial's outcome is
:func:`aid2e.outcome.judge`. Only :mod:`aid2e.ax_bridge` touches Ax.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import campaign, state, state_loader
from .backend import can_follow
from .campaign import directory_name as _directory_name
from .config import SchedulerConfig
from .errors import CampaignInterrupted, ConfigError, FailureRateExceededError, GenerationError, StateWriteError
from .jobs.function import function_job
from .jobs.script import ended_under, script_job
from .loop import ExperimentFacts, InlineAx, TrialLoop, failure_rate_exceeded, with_token
from .objective import Objective
from .outcome import Policy
from .ownership import CampaignLock, refuse_if_held
from .plugins import get_plugin_manager
from .progress import Progress, best_text, trial_text
from .state_records import SavedState, read_saved
from .state_writer import StateWriter
from .trials import TrialBook, TrialRecord
from .types import FunctionJob, JobRequest

if TYPE_CHECKING:
    from .ax_bridge import AxBridge
    from .backend import Backend
    from .workflow import Workflow

log = logging.getLogger(__name__)

#: The state files' format (defined once, in :mod:`aid2e.state`).
STATE_FORMAT, STATE_VERSION = state.STATE_FORMAT, state.STATE_VERSION


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
    """Runs an Ax experiment's trials on a backend (the ``runner``: any aid2e backend).

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
        self.objective = Objective(runner)  # what one trial runs
        self.book = TrialBook()
        self._writer = StateWriter()
        self._started = False
        self._progress: Progress | None = None
        self._owner: Any = None  # Ax's owner thread during a run
        self._loop: TrialLoop | None = None  # during a run
        self._facts: ExperimentFacts | None = None
        self._campaign_id: str | None = None  # set at the first run, or by loading saved state
        self._campaign_dir: Path | None = None  # where the state was loaded from (else job_output_dir/name)
        self._loaded = False  # this scheduler's trials came from saved state
        self._relocated_from: str | None = None  # the saved state was written in another directory
        self._lock: CampaignLock | None = None  # held while a run is under way
        self._start_runner()  # workers warm up while the user sets the objective and Ax generates

    @property
    def trials(self) -> dict[int, TrialRecord]:
        """Every trial's record, by index (the trial book's)."""
        return self.book.records

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
        return self._default_dir(self._facts_name())

    def _default_dir(self, name: str) -> Path:
        return Path(self.config.job_output_dir).resolve() / _directory_name(name)

    def trial_dir(self, index: int) -> Path:
        """The directory of trial ``index``: ``<job_output_dir>/<experiment>/trial_<index>/``."""
        return self.experiment_dir / f"trial_{index}"

    def attempt_dir(self, index: int) -> Path:
        """Where the current attempt of trial ``index`` runs: its trial directory, and for a
        retry ``trial_<i>/attempt_<n>/``, so an earlier attempt that was given up for lost
        (a node cut off, not dead) cannot write into the files of the one that replaced it."""
        attempts = self.trials[index].attempts if index in self.trials else 1
        base = self.trial_dir(index)
        return base if attempts <= 1 else base / f"attempt_{attempts}"

    def _facts_name(self) -> str:
        return self._facts.name if self._facts is not None else self._bridge_or_error().name

    def _facts_now(self) -> ExperimentFacts:
        return self._facts if self._facts is not None else ExperimentFacts.of(self._bridge_or_error())

    # ------------------------------------------------------------ objectives
    def set_objective_function(self, function: Callable[..., Any]) -> None:
        """Evaluate trials with ``function`` (``fn(**parameters)`` or ``fn(parameterization)``,
        see :mod:`aid2e.jobs.function`), returning ``{metric: value or (mean, sem)}``. The older
        scheduler's ``MultiStepsFunction`` runs as a workflow of stages (:mod:`aid2e.multi_steps`)."""
        from .multi_steps import MultiStepsFunction

        if isinstance(function, MultiStepsFunction):
            self.set_workflow(function.to_workflow())
            return
        if not callable(function):
            raise ConfigError(f"set_objective_function needs a callable, got {type(function).__name__}")
        self.objective.bind(lambda: function_job(function, self._bridge_or_error().parameter_names),
                            FunctionJob(function=function))

    def set_script_objective(self, script_path: str, args: tuple[str, ...] = ()) -> None:
        """Evaluate trials by running a script (contract in :mod:`aid2e.jobs.script`)."""
        spec = script_job(script_path, tuple(args))
        self.objective.bind(lambda: spec, spec)

    def set_container_objective(self, container_image: str, container_command: Any, **options: Any) -> None:
        """Evaluate trials by running ``container_command`` in ``container_image``
        (needs the aid2e-containers plugin)."""
        kind = get_plugin_manager().job_kind("container")
        try:
            spec = kind.spec_type(image=container_image, command=container_command, **options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad container objective: {exc}") from exc
        self.objective.bind(lambda: spec, spec)

    def set_workflow(self, workflow: Workflow) -> None:
        """Run each trial as the :class:`~aid2e.workflow.Workflow` ``workflow``: its stages' jobs on
        their backends (the scheduler's runner by default), fanned out, each stage after the
        jobs it needs; the last stage's result is the trial's metrics (see :mod:`aid2e.stages`).
        What can be checked without the experiment (backends, kinds, scripts, functions,
        resources) is checked now; argv names against the trial parameters when the run starts."""
        from .stages import BoundWorkflow
        from .workflow import Workflow as WorkflowType

        if not isinstance(workflow, WorkflowType):
            raise ConfigError(f"set_workflow needs an aid2e.Workflow of Stages, got {type(workflow).__name__}")
        # bound now (backends, kinds, files, resources), and again at the run against the
        # experiment's parameters (argv names)
        BoundWorkflow(workflow, self.runner, None, self.config.trial_resources())
        self.objective.bind(lambda: BoundWorkflow(workflow, self.runner, self._bridge_or_error().parameter_names,
                                                  self.config.trial_resources()))

    def _request(self, index: int) -> JobRequest:
        """The (adapted) job request of trial ``index``'s current attempt."""
        record = self.trials[index]
        return self.objective.request(experiment=self._facts_now().name, index=index, parameters=record.parameters,
                                      workdir=str(self.attempt_dir(index)), resources=self.config.trial_resources(),
                                      token=record.token)

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
        self.objective.for_run()
        self._start_runner()
        self._begin_run(max_trials, lift_parallelism=True)
        try:
            self._resume_running()
            self._save_state(full=True)
            assert self._loop is not None
            interruption = self._loop.run(budget=max_trials)
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
        self.objective.for_run()
        self._start_runner()
        self._begin_run(len(trials))
        try:
            assert self._loop is not None
            interruption = self._loop.run(budget=len(trials), given=trials)
        finally:
            self._end_run()
        if interruption is not None:
            raise CampaignInterrupted(interruption.message(self.experiment_dir))

    def cancel_running(self, reason: str = "canceled by aid2e", timeout: float = 60.0) -> None:
        """Cancel every job in flight and abandon their trials in Ax (with ``reason``).

        Jobs that do not report their end within ``timeout`` seconds are abandoned anyway.
        """
        loop = self._loop if self._loop is not None else self._make_loop(InlineAx(self._bridge_or_error()))
        loop.cancel_all(reason, timeout)

    def _start_runner(self) -> None:
        if not self._started:
            self.runner.start()
            self._started = True
        workflow = self.objective.workflow
        for backend in workflow.backends() if workflow is not None else ():
            if not getattr(backend, "_aid2e_started", False):  # a stage's own backend: started once
                backend.start()
                with contextlib.suppress(AttributeError):
                    backend._aid2e_started = True

    def _make_loop(self, ax: Any) -> TrialLoop:
        return TrialLoop(
            backend=self.runner, book=self.book, ax=ax, job=self.objective.job, facts=self._facts_now(),
            request_for=self._request, save=self._save_state, workflow=self.objective.workflow,
            policy=Policy(max_retries=self.config.max_retries, trial_timeout=self.config.trial_timeout,
                          penalty=self.config.penalty_values(), exit_penalty=self.config.penalty_measurements()),
            capacity=self.capacity, monitoring_interval=self.config.monitoring_interval,
            tolerated_failure_rate=self.config.tolerated_failure_rate, max_failed_trials=self.config.max_failed_trials,
            experiment_dir=self.experiment_dir,
            trial_dir=self.trial_dir, campaign_id=self._campaign_id,
            cleanup_after_completion=self.config.cleanup_after_completion, on_change=self._show_progress,
            on_trial_end=self._trial_ended, on_tick=self._progress_tick)

    def _begin_run(self, total: int, *, lift_parallelism: bool = False) -> None:
        """Take the campaign (its lock, and its saved state when asked to continue it), cache
        what the loop needs from Ax, then hand Ax to its owner thread."""
        from .ax_owner import AxOwner

        campaign.check_writable(self.experiment_dir, self.config.job_output_dir)
        self._take_campaign(may_load=lift_parallelism)
        try:
            bridge = self._bridge_or_error()
            if lift_parallelism:
                bridge.lift_parallelism(self.capacity)
            self._check_runner_follows(self.runner)
            self._facts = ExperimentFacts.of(bridge)
            self._check_penalty(self._facts)
            self._progress = Progress(total)
            self._owner = AxOwner(bridge)
            self._loop = self._make_loop(self._owner)
            self._owner.start()
        except BaseException:
            self._owner = self._loop = None
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
                if self._progress is not None:
                    self._progress.close()
                self._facts = self._loop = None
                self.book.stop_following()
                self._release_campaign()

    def _resume_running(self) -> None:
        """Trials saved as RUNNING (a loaded experiment) are polled again through their handles;
        those saved just before their submission are adopted (the backend finds the job under
        the attempt's token) or submitted. A campaign loaded from another directory than it was
        saved in (moved or copied) cannot follow jobs that write into the old one: those trials
        run again here as a new attempt, unless their job had already ended here. (``_begin_run``
        has checked that the backend can follow the rest.)"""
        for record in list(self.book.unfollowed_running()):
            index = record.index
            if record.jobs:  # made of stages: every job is followed, adopted or queued again
                if self._loop is None or self._loop.workflow is None:
                    raise ConfigError(f"trial {index} is made of stages: call set_workflow(...) with the campaign's "
                                      "workflow before run_optimization")
                self._loop.resume_trial(index)
                continue
            workdir = record.handle.workdir if record.handle is not None else self.attempt_dir(index)
            if self._relocated_from is not None and not (record.token and ended_under(workdir, record.token)):
                log.warning("trial %d: its job writes into %s, not into %s (the campaign was moved or copied): "
                            "running it again here", index, self._relocated_from, self.experiment_dir)
                self.book.new_attempt(index, submit=False)
                self._save_state()
            if record.handle is not None:
                self.book.follow(index)
                continue
            # saved just before its submission: did the submission happen?
            adopted = self.runner.adopt(self._request(index)) if hasattr(self.runner, "adopt") else None
            if adopted is not None:
                log.info("trial %d: found its job %s, following it", index, adopted.native_id)
                self.book.submitted(index, with_token(adopted, record.token))
            else:
                log.info("trial %d was saved but never submitted: submitting it now", index)
                self.book.await_submission(index)

    # ------------------------------------------------------------ the campaign
    def _take_campaign(self, *, may_load: bool) -> None:
        """Lock the campaign directory for this run (see :func:`aid2e.campaign.take`)."""
        where = self.experiment_dir  # absolute (resolved)
        new = not self._loaded and self._campaign_id is None
        load = (lambda: self._continue_saved(where)) if new and may_load and self.config.load_if_exists else None
        lock = campaign.take(where, campaign_id=None if new else self._campaign_id,
                             known_saved_at=self._writer.saved_at, name=self._facts_name(), load_saved=load)
        if self._campaign_id is None:
            self._campaign_id = uuid.uuid4().hex
        lock.campaign = self._campaign_id
        self._lock = lock

    def _release_campaign(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _continue_saved(self, where: Path) -> None:
        """config ``load_if_exists``: continue the campaign saved in ``where`` (same parameters
        and objectives as this experiment, else a one-line error)."""
        saved = read_saved(where)
        state_loader.check_same_problem(saved, where, self._bridge_or_error())
        self._apply_state(saved, campaign_dir=where)
        log.info("continuing the campaign saved in %s (%d trials)", where, len(self.trials))

    def _check_runner_follows(self, runner: Any) -> None:
        """Trials in flight can only be followed by a backend of the kind they run on."""
        foreign = sorted(i for i, r in self.trials.items()
                         if r.status == "RUNNING" and r.handle is not None and not can_follow(runner, r.handle.backend))
        if foreign:
            backends = sorted({self.trials[i].handle.backend for i in foreign})  # type: ignore[union-attr]
            raise ConfigError(
                f"trial(s) {', '.join(map(str, foreign))} are still running as {'/'.join(backends)} jobs, which "
                f"{type(runner).__name__} cannot follow: resume with the runner they run on (AxScheduler.resume"
                "(path) rebuilds the saved one; aid2e resume does so too) and switch runners once they have ended")

    def _check_penalty(self, facts: ExperimentFacts) -> None:
        """config ``penalty`` gives every objective a value and names only metrics Ax knows; it is
        given when a stage maps an exit code to ``"penalty"``, and only then with failure_policy "fail"."""
        penalty = self.config.penalty
        workflow = self.objective.workflow
        mapped = [stage.name for stage in (workflow.workflow.stages if workflow is not None else ())
                  if "penalty" in stage.exit_codes.values()]
        if penalty is None and mapped:
            raise ConfigError(f"stage {mapped[0]!r} maps an exit code to \"penalty\": give config 'penalty' a value "
                              f"for every objective, like {{{facts.objective_names[0]!r}: 0.0}}")
        if penalty is not None and self.config.failure_policy == "fail" and not mapped:
            raise ConfigError("config 'penalty' is given but failure_policy is \"fail\" and no stage maps an exit "
                              "code to \"penalty\": set config 'failure_policy': \"penalty\" to complete failed "
                              "trials with it")
        if penalty is None:
            return
        missing = [m for m in facts.objective_names if m not in penalty]
        unknown = sorted(set(penalty) - facts.metric_names)
        if missing or unknown:
            what = (f"lacks objective(s) {', '.join(map(repr, missing))}" if missing
                    else f"names metric(s) {', '.join(map(repr, unknown))} the experiment does not have")
            raise ConfigError(f"config 'penalty' {what}: give a value for each of "
                              f"{', '.join(map(repr, facts.objective_names))}")

    # ------------------------------------------------------------ failures and answers
    def _failure_rate_exceeded(self) -> bool:
        return failure_rate_exceeded(self.book.counts(), self.config.tolerated_failure_rate,
                                     self.config.max_failed_trials)

    def _failure_summary(self) -> str:
        counts = self.book.counts()
        failed = [r for r in self.trials.values() if r.status == "FAILED" or r.penalized]
        last = failed[-1].message.splitlines()[0] if failed and failed[-1].message else ""
        limit = self.config.max_failed_trials
        if limit is not None and counts["FAILED"] + counts["PENALIZED"] > limit:
            what = (f"{counts['FAILED']} trials failed and {counts['PENALIZED']} were penalized, more than "
                    f"max_failed_trials={limit}")
        else:
            what = (f"{counts['FAILED']} of {counts['FAILED'] + counts['COMPLETED']} trials failed, more than "
                    f"tolerated_failure_rate={self.config.tolerated_failure_rate}")
        return f"{what}; last reason: {last} (trial directories under {self.experiment_dir})"

    def best_parameters(self) -> Any:
        """Best observed parameters (one objective), Pareto ``{index: params}`` (several),
        or ``None`` if no trial completed."""
        bridge = self._bridge_or_error()
        if bridge.is_multi_objective:
            return bridge.pareto()
        return bridge.best()

    def _best_text(self) -> str | None:
        """The best value so far of the one objective, for progress (None with several)."""
        return best_text(self.trials.values(), self._facts.minimize if self._facts is not None else {})

    def _trial_ended(self, index: int) -> None:
        """The one report of a trial that ended (a WARNING when it failed or was penalized)."""
        if self._progress is not None:
            record = self.trials[index]
            bad = record.status == "FAILED" or record.penalized
            self._progress.line(trial_text(record, self._best_text()), logging.WARNING if bad else logging.INFO)

    def _progress_tick(self) -> None:
        if self._progress is not None:
            self._progress.tick(self.book.counts)

    def _show_progress(self) -> None:
        if self._progress is None:
            return
        counts = self.book.counts()
        self._progress.update(completed=counts["COMPLETED"], running=counts["RUNNING"],
                              failed=counts["FAILED"], best=self._best_text())

    # ------------------------------------------------------------ persistence
    def _trials_json(self) -> str:
        """The scheduler part of the state (config, backend, objective, every trial's record) as JSON."""
        head: dict[str, Any] = {"config": self.config.to_dict(), "runner": state_loader.describe_backend(self.runner),
                                "campaign": {"id": self._campaign_id, "dir": str(self.experiment_dir)}}
        if self.objective.spec is not None:
            head["objective"] = self.objective.dump()
        return self._writer.text(head, self.trials.values(), self.experiment_dir)

    def _run_on_ax(self, function: Callable[[Any], None]) -> None:
        """``function(bridge)`` where Ax lives: its owner thread during a run, here otherwise."""
        if self._owner is not None:
            self._owner.report(function)
        else:
            function(self._bridge_or_error())

    def _save_state(self, *, full: bool = False) -> None:
        """Save the state under ``experiment_dir`` (see :mod:`aid2e.state_writer`)."""
        if self._bridge is None:
            return
        self._writer.save(self.experiment_dir, self._trials_json(), snapshot=self._run_on_ax, full=full,
                          interval=self.config.snapshot_interval)

    @classmethod
    def resume(cls, path: str, runner: Backend | None = None,
               config: Mapping[str, Any] | None = None) -> AxScheduler:
        """A scheduler for the campaign saved under ``path`` (the state directory
        ``<job_output_dir>/<experiment name>/`` a running scheduler keeps, or a saved file).

        The backend is rebuilt from the state unless given; ``config`` overrides saved keys. Script
        and container objectives are restored; a function objective when it is importable by
        module path (otherwise call ``set_objective_function`` again: the error says so). The
        next ``run_optimization`` first follows the trials that were in flight.
        """
        where = Path(path).expanduser()
        if where.is_dir():
            refuse_if_held(where)
        saved_state = read_saved(where)
        saved = saved_state.scheduler
        if runner is None:
            runner = state_loader.rebuild_backend(saved.get("runner"))
        known = {f.name for f in attrs.fields(SchedulerConfig)}
        merged = {k: v for k, v in (saved.get("config") or {}).items() if k in known}
        if where.is_dir():
            merged["job_output_dir"] = str(where.resolve().parent)
        merged.update(config or {})
        scheduler = cls(None, runner, merged)
        scheduler._apply_state(saved_state, campaign_dir=where.resolve() if where.is_dir() else None)
        scheduler._check_runner_follows(runner)
        objective = saved.get("objective")
        if isinstance(objective, dict) and objective.get("kind") == "workflow":
            scheduler._restore_workflow(objective)
        else:
            scheduler.objective.restore(objective)
        return scheduler

    def _restore_workflow(self, data: Mapping[str, Any]) -> None:
        """Bind the workflow saved with a resumed campaign (see :func:`aid2e.stages.workflow_from_dump`);
        when it cannot be, the next run says why and to call set_workflow."""
        from .stages import workflow_from_dump

        try:
            self.set_workflow(workflow_from_dump(data))
        except ConfigError as exc:
            self.objective.cannot_restore(f"the campaign's workflow cannot be restored ({exc}); call "
                                          "set_workflow(...) with it before run_optimization")

    def report(self, path: str | Path | None = None) -> Path:
        """Write the campaign's report, one self-contained HTML file (as ``aid2e report``
        does), to ``path`` (default: ``report.html`` in :attr:`experiment_dir`); returns where.
        It is drawn from the saved state, which every change of a trial updates."""
        from .report import write

        return write(self.experiment_dir, path)

    def save_experiment(self, path: str) -> None:
        """Write the Ax experiment and this scheduler's trial records to one JSON file, atomically."""
        self._writer.write_file(path, self._trials_json(), self._bridge_or_error().snapshot())

    def load_experiment(self, path: str) -> None:
        """Load what :meth:`save_experiment` wrote, or a run's saved state (its experiment
        directory ``<job_output_dir>/<name>/``). Replaces this scheduler's experiment and trial
        records; trials saved as RUNNING are followed again through their job handles by the
        next run."""
        where = Path(path).expanduser()
        self._apply_state(read_saved(where), campaign_dir=where.resolve() if where.is_dir() else None)

    def _apply_state(self, saved: SavedState, campaign_dir: Path | None = None) -> None:
        """Make the campaign in ``saved`` this scheduler's (see :func:`aid2e.state_loader.load`).

        ``campaign_dir``: the directory the state was read from, where the campaign now lives
        (trial directories are saved relative to it); None for a ``save_experiment`` file,
        whose campaign lives under this scheduler's ``job_output_dir``.
        """
        loaded = state_loader.load(saved, lambda bridge: campaign_dir or self._default_dir(bridge.name))
        self._campaign_dir = campaign_dir
        self._bridge = loaded.bridge
        self.book = TrialBook(loaded.records)
        self._campaign_id = loaded.campaign_id
        self._relocated_from = loaded.relocated_from
        self._writer.loaded(loaded.saved_at)
        self._loaded = True
        self._facts = None


__all__ = ["AxScheduler", "Batch", "TrialRecord"]
