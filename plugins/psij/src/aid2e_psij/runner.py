"""``PsijRunner`` and ``SlurmRunner``: each trial a batch job, submitted and watched through PSI/J.

A trial's batch job runs the core's job launcher (``python -m aid2e.jobs.launch <trial dir>``)
with the controller's interpreter, so the script contract is the same as on local cores and the
exit status lands in the trial directory (a shared file system is assumed, as on every cluster).
Function objectives reach here already adapted into script jobs by the core.

Status: :meth:`PsijRunner.poll` runs the executor's status command once for all jobs in
flight (one ``squeue`` per scheduler tick on Slurm) and parses it tolerantly (see
:mod:`aid2e_psij.executors`). A job that left the queue has ended; how, the trial directory
says. Handles keep the native job id, so a restarted controller polls the same jobs again.

Failures: Slurm jobs are submitted non-requeueable, so a lost node ends the job ``NODE_FAIL``
instead of Slurm running it a second time. A failed job's end state in Slurm decides what the
trial reports: ``NODE_FAIL``, ``PREEMPTED``, ``BOOT_FAIL`` and a job that vanished without a
record are infrastructure failures (``retryable``: the scheduler runs the trial again, up to
``max_retries``); ``TIMEOUT``, ``OUT_OF_MEMORY``, ``DEADLINE`` and the script's own exit code
are the job's (not retried; the message says which).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple, NewType

import attrs
from attrs import field, frozen

from aid2e import atomic
from aid2e.backend import Backend
from aid2e.errors import ConfigError, SubmitError, message_line
from aid2e.jobs import detached
from aid2e.jobs import script as script_kind
from aid2e.jobs.files import CANCEL_MARKER, PRE_LAUNCH_FILE
from aid2e.procs import running_start, start_time
from aid2e.structure import Invalid, converter, positive_int, structure
from aid2e.types import JobHandle, JobRequest, JobResult, JobState, ScriptJob
from aid2e.units import duration_seconds, format_duration, size_bytes

from .executors import EXECUTORS, batch_status, is_batch, make_executor

log = logging.getLogger(__name__)

#: Seconds a job may be gone from the queue before its status file must be visible (NFS caches).
STATUS_GRACE = 30.0
#: A submission this recent (s) may still be in flight in an orphaned sbatch ...
ADOPT_RECENT = 120.0
#: ... so adopt() looks for its job this long (s) before resubmitting.
ADOPT_PATIENCE = 10.0
#: Seconds between looks at the trial directories while waiting.
WAIT_STEP = 0.2
#: Keys of ``sbatch_options`` that PSI/J has fields for.
_FIELD_OPTIONS = {"account", "partition", "time", "mem", "cpus-per-task", "nodes", "job-name"}
#: Seconds a failed job's end state is looked for while the batch system finishes it.
END_PATIENCE = 10.0
#: Seconds after a job's result was read that its PSI/J files go even without an exit-code file.
TIDY_PATIENCE = 600.0


class _End(NamedTuple):
    """What a Slurm end state means for the trial."""

    name: str  # Slurm's long name (sacct, scontrol)
    cause: str  # the message's first words
    retryable: bool  # an infrastructure failure: the scheduler may run the trial again


#: Slurm end states (squeue's compact codes) that say more than "the script failed".
SLURM_ENDS = {
    "NF": _End("NODE_FAIL", "node failure", True),
    "PR": _End("PREEMPTED", "preempted", True),
    "BF": _End("BOOT_FAIL", "node boot failure", True),
    "TO": _End("TIMEOUT", "time limit", False),
    "OOM": _End("OUT_OF_MEMORY", "out of memory", False),
    "DL": _End("DEADLINE", "deadline", False),
}
#: sacct's long state names -> squeue's compact codes
_SACCT_CODES = {**{end.name: code for code, end in SLURM_ENDS.items()},
                "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA"}
_CODE_STATES = {"NF": JobState.FAILED, "PR": JobState.FAILED, "BF": JobState.FAILED, "TO": JobState.FAILED,
                "OOM": JobState.FAILED, "DL": JobState.FAILED, "F": JobState.FAILED,
                "CD": JobState.COMPLETED, "CA": JobState.CANCELED}


class _Seen(NamedTuple):
    """A job as the batch system listed it."""

    state: JobState
    message: str = ""  # the batch system's reason, explained (PSI/J's words) for failed jobs
    native: str = ""  # the batch system's own state code (Slurm: "R", "NF", "TO", ...)


#: ``modules``: a list of ``module load`` names (one string is refused: it would be read letter by letter).
ModuleNames = NewType("ModuleNames", tuple)
#: ``sbatch_options`` and ``env``: text to text (numbers are written as text).
TextMap = NewType("TextMap", dict)


def _module_names(value: Any, _type: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
            isinstance(m, str) and m.strip() for m in value):
        raise Invalid("a list of module names", value)
    return tuple(value)


def _text_map(value: Any, _type: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise Invalid("a dict", value)
    return {str(k): str(v) for k, v in value.items()}


def _batch_options(_instance: Any, _attribute: Any, options: Mapping[str, str]) -> None:
    for option in options:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", option):
            raise ConfigError(f"sbatch option {option!r} is not an option name (like 'mail-type')")
        if option in ("requeue", "no-requeue"):
            raise ConfigError(f"sbatch option {option!r} is not allowed: aid2e submits jobs with --no-requeue "
                              "and runs a trial again itself after a node failure (config 'max_retries')")


converter.register_structure_hook(ModuleNames, _module_names)
converter.register_structure_hook(TextMap, _text_map)


@frozen(kw_only=True)
class PsijConfig:
    """The ``config`` dict of :class:`PsijRunner` / :class:`SlurmRunner`.

    * ``modules``: ``module load`` lines run before each job's command;
    * ``sbatch_options`` (alias ``batch_options``): extra scheduler options, ``{"mail-type": "END"}``
      becomes ``#SBATCH --mail-type=END`` (a PSI/J custom attribute for other executors);
    * ``env``: environment variables for every job;
    * ``max_in_flight``: jobs kept in the queue at once (the runner's capacity, default 32);
    * ``python``: the interpreter jobs use (default: the controller's);
    * ``work_directory``: where PSI/J writes batch scripts (default ``~/.aid2e/psij``);
    * ``status_grace``: seconds to wait for a finished job's status file to appear.
    """

    modules: ModuleNames = field(default=(), converter=tuple)
    sbatch_options: TextMap = field(factory=dict, validator=_batch_options)
    env: TextMap = field(factory=dict)
    max_in_flight: int = field(default=32, validator=positive_int)
    python: str = field(default=sys.executable)
    work_directory: str = field(default=str(Path("~/.aid2e/psij").expanduser()))
    status_grace: float = STATUS_GRACE


def _structure_config(config: Mapping[str, Any] | None) -> PsijConfig:
    values = dict(config) if isinstance(config, Mapping) else config
    if isinstance(values, dict) and "batch_options" in values:
        values.setdefault("sbatch_options", values.pop("batch_options"))
    return structure(PsijConfig, values, what="PSI/J runner config")


def parse_walltime(value: Any) -> timedelta | None:
    """A time limit: ``"01:00:00"``, ``"2-00:00:00"``, ``"30:00"``, ``"2h"``, minutes as a number, or a
    timedelta (read by :func:`aid2e.units.duration_seconds`)."""
    seconds = duration_seconds(value, what="time limit", numbers="minutes")
    return None if seconds is None else timedelta(seconds=seconds)


def parse_memory(value: Any) -> int | None:
    """Bytes of a memory size (read by :func:`aid2e.units.size_bytes`: ``"4G"``, ``"1.5G"``, ``"4000"`` MB)."""
    return size_bytes(value)


class PsijRunner(Backend):
    """Trials as batch jobs through a PSI/J executor.

    ``PsijRunner(executor="slurm", queue=None, account=None, time_limit=None, memory=None,
    cpus_per_task=1, nodes=1, config=None)``; ``config`` keys are those of :class:`PsijConfig`.
    """

    name = "psij"
    #: a SlurmRunner's jobs are PSI/J Slurm jobs too
    follows = frozenset({"slurm"})
    kinds = frozenset({"script"})
    #: the queue is asked once per scheduler tick (monitoring_interval), not more often
    poll_interval = float("inf")

    def __init__(self, executor: str = "slurm", queue: str | None = None, account: str | None = None,
                 time_limit: Any = None, memory: Any = None, cpus_per_task: int = 1, nodes: int = 1,
                 config: Mapping[str, Any] | None = None) -> None:
        if executor not in EXECUTORS:
            raise ConfigError(f"unknown PSI/J executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
        for what, value in (("cpus_per_task", cpus_per_task), ("nodes", nodes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{what} must be a positive integer, got {value!r}")
        self.executor_name = executor
        self.queue = queue
        self.account = account
        self.time_limit = parse_walltime(time_limit)
        self.memory = parse_memory(memory)
        self.cpus_per_task = cpus_per_task
        self.nodes = nodes
        self.config = _structure_config(config)
        self._executor: Any = None
        self._lock = threading.Lock()
        self._jobs: dict[str, Any] = {}  # native id -> psij Job (this instance's submissions)
        self._last: dict[str, _Seen] = {}  # native id -> how the queue last listed it
        self._results: dict[str, JobResult] = {}  # native id -> how an ended job ended (read once)
        self._untidy: dict[str, JobHandle] = {}  # read jobs whose PSI/J files are still there
        self._untidy_since: dict[str, float] = {}
        self._gone_since: dict[str, float] = {}  # native id -> when it left the queue without status
        self._status_calls = 0

    # ------------------------------------------------------------ setup
    def to_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this runner (kept in the saved state for resume)."""
        return {"executor": self.executor_name, **self._common_kwargs(), "queue": self.queue}

    def _common_kwargs(self) -> dict[str, Any]:
        config = attrs.asdict(self.config)
        config["modules"] = list(config["modules"])
        return {
            "account": self.account,
            "time_limit": _format_walltime(self.time_limit),
            "memory": self.memory,
            "cpus_per_task": self.cpus_per_task,
            "nodes": self.nodes,
            "config": config,
        }

    @property
    def capacity(self) -> int:
        return self.config.max_in_flight

    @property
    def executor(self) -> Any:
        """The PSI/J executor (created on first use)."""
        with self._lock:
            if self._executor is None:
                work = Path(self.config.work_directory).expanduser()
                work.mkdir(parents=True, exist_ok=True)
                self._executor = make_executor(self.executor_name, work)
            return self._executor

    def start(self) -> None:
        self.executor  # noqa: B018  (fail early if PSI/J cannot build the executor)

    def status(self) -> str:
        """Slurm: the partition's availability and its nodes' states (one ``sinfo``); other
        batch systems: whether their commands are here."""
        return batch_status(self.executor_name, self.queue)

    def _spec(self, request: JobRequest, workdir: Path) -> Any:
        from psij import JobAttributes, JobSpec, ResourceSpecV1

        # The trial's own resources (scheduler config 'resources', a stage's resources) come
        # first, then sbatch_options, then the runner's arguments. Its 'extra' entries are batch
        # options too ({"constraint": "cpu"} is --constraint=cpu) and win over sbatch_options.
        wanted = request.resources
        try:
            _batch_options(None, None, wanted.extra)
        except ConfigError as exc:
            raise SubmitError(f"resources 'extra': {exc}") from exc
        options = {**self.config.sbatch_options, **wanted.extra}
        queue = wanted.queue or options.pop("partition", None) or self.queue
        account = wanted.account or options.pop("account", None) or self.account
        seconds = wanted.walltime_seconds()
        duration = timedelta(seconds=seconds) if seconds else (parse_walltime(options.pop("time", None))
                                                               or self.time_limit)
        memory = parse_memory(wanted.memory) or parse_memory(options.pop("mem", None)) or self.memory
        cpus = int(options.pop("cpus-per-task", self.cpus_per_task))
        cpus = wanted.cpus if wanted.cpus != 1 else cpus
        nodes = int(options.pop("nodes", self.nodes))
        for key in ("partition", "account", "time", "mem"):
            options.pop(key, None)
        options.pop("job-name", None)
        name = self._job_name_for(request)
        custom = {f"{self._option_prefix()}.{k}": v for k, v in options.items()}
        if self.executor_name == "slurm":  # PSI/J 0.9.11's Slurm template drops the job name
            custom["slurm.job-name"] = _job_name(name)
        attributes = JobAttributes(queue_name=queue, account=account, custom_attributes=custom)
        attributes.duration = duration  # None: the batch system's default, not PSI/J's 10 minutes
        pre_launch = None
        if self.config.modules:
            pre_launch = workdir / PRE_LAUNCH_FILE
            atomic.write_bytes(pre_launch, "".join(f"module load {m}\n" for m in self.config.modules).encode())
        return JobSpec(
            name=_job_name(name),
            executable=self.config.python,
            arguments=["-m", "aid2e.jobs.launch", str(workdir)],
            directory=workdir,
            environment={**self.config.env},
            resources=ResourceSpecV1(node_count=nodes, cpu_cores_per_process=cpus, memory=memory),
            attributes=attributes,
            pre_launch=pre_launch,
        )

    def _option_prefix(self) -> str:
        return {"pbs_classic": "pbs"}.get(self.executor_name, self.executor_name)

    # ------------------------------------------------------------ protocol
    def submit(self, request: JobRequest) -> JobHandle:
        from psij import Job
        from psij.exceptions import SubmitException

        if not isinstance(request.job, ScriptJob):
            kind = getattr(request.job, "kind", type(request.job).__name__)
            raise SubmitError(f"the PSI/J backend runs script jobs, not {kind!r} jobs")
        try:
            workdir = script_kind.prepare_workdir(request)
        except OSError as exc:
            raise SubmitError(f"cannot prepare trial directory {request.workdir}: {exc.strerror}") from exc
        job = Job(self._spec(request, workdir))
        try:
            self.executor.submit(job)
        except SubmitException as exc:
            raise SubmitError(f"{self.executor_name} refused the job: {message_line(exc)}") from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise SubmitError(f"cannot submit to {self.executor_name}: {message_line(exc)}") from exc
        native_id = str(job.native_id)
        with self._lock:
            self._jobs[native_id] = job
        log.debug("trial %d submitted as %s job %s", request.trial_index, self.executor_name, native_id)
        extra: dict[str, Any] = {"kind": "script", "executor": self.executor_name, "psij_id": str(job.id)}
        if not is_batch(self.executor) and native_id.isdigit():  # a local process: its pid, and when it started
            started = start_time(int(native_id))
            if started is not None:
                extra["start_time"] = started
        return JobHandle(backend=self.name, native_id=native_id, workdir=str(workdir), submitted_at=time.time(),
                         extra=extra)

    def adopt(self, request: JobRequest) -> JobHandle | None:
        """A job submitted for ``request`` by a controller that died before saving its handle:
        named by the launcher's status record in the trial directory once it started (its batch
        job id; on the local executor, the launcher's pid), else found by its job name in the
        Slurm queue (Slurm keeps ended jobs there for MinJobAge).

        An ``sbatch`` (or a local launcher) started by a controller that was then killed still
        starts on its own, a moment later: while the trial's submission is recent, keep looking
        for a few seconds before concluding that nothing was submitted.
        """
        workdir = Path(request.workdir)
        command_file = workdir / script_kind.COMMAND_FILE
        if not script_kind.prepared_under(workdir, request.token):
            return None  # never prepared for this attempt (files of another campaign or attempt)
        recent = time.time() - command_file.stat().st_mtime < ADOPT_RECENT
        deadline = time.monotonic() + (ADOPT_PATIENCE if recent else 0.0)
        while True:
            status = script_kind.launched_under(workdir, request.token)
            found = self._adopted(request, workdir, status)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.2 if self.executor_name != "slurm" else 0.5)

    def _adopted(self, request: JobRequest, workdir: Path, status: dict | None) -> JobHandle | None:
        """The handle of ``request``'s job if its launcher's ``status`` or the queue names it."""
        extra: dict[str, Any] = {"kind": "script", "executor": self.executor_name, "adopted": True}
        started_at = float(status.get("started_at") or time.time()) if status is not None else time.time()
        if status is not None and status.get("batch_job_id"):
            # the job started (and may have ended and left the queue): its own record names it
            return JobHandle(backend=self.name, native_id=str(status["batch_job_id"]), workdir=str(workdir),
                             submitted_at=started_at, extra=extra)
        if status is not None and not is_batch(self.executor) and isinstance(status.get("pid"), int):
            # a local job: followed by its launcher's pid (and start time, so a reused pid is not it)
            pid = status["pid"]
            started = running_start(pid)
            if started is not None:
                extra["start_time"] = started
            return JobHandle(backend=self.name, native_id=str(pid), workdir=str(workdir),
                             submitted_at=started_at, extra=extra)
        if self.executor_name != "slurm":
            return None
        name = _job_name(self._job_name_for(request))
        try:
            listed = subprocess.run(["squeue", "--me", "-h", "-t", "all", "--name", name, "-o", "%i|%Z"],
                                    capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("cannot look for trial %d's job in the queue: %s", request.trial_index, exc)
            return None
        # the name may be reused by another campaign: the job must run in this trial directory
        found = [line.split("|", 1)[0] for line in listed.splitlines()
                 if line.partition("|")[2].rstrip("/") == str(workdir).rstrip("/")]
        if not found:
            return None
        return JobHandle(backend=self.name, native_id=found[-1], workdir=str(workdir), submitted_at=time.time(),
                         extra=extra)

    def _job_name_for(self, request: JobRequest) -> str:
        return self.config.sbatch_options.get("job-name") or f"aid2e-{request.experiment}-{request.trial_index}"

    def poll(self, handles: Sequence[JobHandle]) -> dict[str, JobState]:
        if self._untidy:
            self._tidy()
        if not handles:
            return {}
        if is_batch(self.executor):
            queue = self._query_queue([h.native_id for h in handles])
        else:
            queue = {h.native_id: self._local_state(h) for h in handles}
        states = {}
        now = time.monotonic()
        for handle in handles:
            try:
                states[handle.native_id] = self._state_of(handle, queue, now)
            except Exception as exc:  # noqa: BLE001 - one trial's files must not hide the others
                log.warning("cannot poll %s job %s: %s", self.executor_name, handle.native_id, message_line(exc))
                states[handle.native_id] = JobState.FAILED
        return states

    def _query_queue(self, native_ids: list[str]) -> dict[str, _Seen] | None:
        """One status command for every job; ``None`` when the batch system did not answer."""
        executor = self.executor
        self._status_calls += 1
        try:
            out = executor._run_command(executor.get_status_command(native_ids))
            exit_code = 0
        except subprocess.CalledProcessError as exc:
            out, exit_code = exc.output, exc.returncode
        except OSError as exc:
            log.warning("%s status command failed: %s", self.executor_name, exc)
            return None
        try:
            statuses = executor.parse_status_output(exit_code, out)
        except Exception as exc:  # noqa: BLE001 - a bad answer must not fail every trial
            log.warning("%s status output not understood: %s", self.executor_name, message_line(exc))
            return None
        return {nid: _Seen(self._map_state(s.state), s.message or "",
                           str((s.metadata or {}).get("native_state", "")))
                for nid, s in statuses.items()}

    def _local_state(self, handle: JobHandle) -> _Seen | None:
        """How a local executor's job is doing; a process an earlier controller started is
        followed by its pid and start time (None: it is gone, the trial directory says how)."""
        job = self._jobs.get(handle.native_id)
        if job is None:
            return _Seen(JobState.ACTIVE) if detached.running(handle) else None
        return _Seen(self._map_state(job.status.state), job.status.message or "")

    @staticmethod
    def _map_state(state: Any) -> JobState:
        name = getattr(state, "name", str(state))
        return {"NEW": JobState.QUEUED, "QUEUED": JobState.QUEUED, "ACTIVE": JobState.ACTIVE,
                "COMPLETED": JobState.COMPLETED, "FAILED": JobState.FAILED,
                "CANCELED": JobState.CANCELED}.get(name, JobState.ACTIVE)

    def _state_of(self, handle: JobHandle, queue: dict[str, _Seen] | None, now: float) -> JobState:
        """The trial directory is authoritative once the launcher recorded the end; before that,
        the queue says whether the job waits or runs."""
        native_id = handle.native_id
        workdir = Path(handle.workdir)
        if (workdir / CANCEL_MARKER).exists():
            return JobState.CANCELED
        if script_kind.ended_under(workdir, script_kind.handle_token(handle)):
            self._gone_since.pop(native_id, None)
            return script_kind.read_result(workdir, token=script_kind.handle_token(handle)).state
        if queue is None:  # the batch system did not answer: keep what we knew
            return self._last.get(native_id, _Seen(JobState.QUEUED)).state
        seen = queue.get(native_id)
        if seen is not None:
            self._last[native_id] = seen
            if not seen.state.is_final:
                return seen.state
            if seen.state is JobState.CANCELED:
                return JobState.CANCELED
        # out of the queue (or ended in it) without a final status: a shared file system may
        # show the file a little later, and a launcher the batch system is stopping (node down,
        # time limit) records its end a moment later. Reporting the end before that could let a
        # retry of the trial start while the old launcher still writes into the trial directory.
        # After status_grace the job failed without a record (SIGKILLed, node lost).
        first = self._gone_since.setdefault(native_id, now)
        if now - first < self.config.status_grace:
            return JobState.ACTIVE
        return JobState.FAILED

    def result(self, handle: JobHandle) -> JobResult:
        """How the job ended (read once, then kept). PSI/J's own files for the job (batch script,
        exit-code, output and node files in ``work_directory``) are removed once it is read:
        hundreds of jobs would leave thousands of them, and a batch system that numbers jobs
        from 1 again would show a new job an old job's exit code."""
        kept = self._results.get(handle.native_id)
        if kept is not None:
            return kept
        try:
            result = self._result(handle)
        except Exception as exc:  # noqa: BLE001 - never raise for one job: it fails, the others go on
            result = JobResult(state=JobState.FAILED, message=f"cannot read the result of {self.executor_name} "
                                                              f"job {handle.native_id}: {message_line(exc)}")
        self._results[handle.native_id] = result
        self._untidy[handle.native_id] = handle
        self._tidy()
        return result

    def _psij_files(self, handle: JobHandle) -> list[Path]:
        folder = Path(self.config.work_directory).expanduser() / self.executor_name
        files = [folder / f"{handle.native_id}.{suffix}" for suffix in ("ec", "out", "nodefile")]
        if handle.extra.get("psij_id"):
            files.append(folder / f"{handle.extra['psij_id']}.job")
        return files

    def _tidy(self, *, wait: float = 0.0) -> None:
        """Remove PSI/J's files of jobs whose result was read, once PSI/J's batch script has
        written the exit code (it does so just after our launcher ends); jobs that never get
        one (lost with their node) are let go after ``TIDY_PATIENCE`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            for native_id, handle in list(self._untidy.items()):
                files = self._psij_files(handle)
                read_at = self._untidy_since.setdefault(native_id, time.monotonic())
                if files[0].exists() or time.monotonic() - read_at > TIDY_PATIENCE:
                    for path in files:
                        try:
                            path.unlink(missing_ok=True)
                        except OSError as exc:
                            log.debug("cannot remove %s: %s", path, exc)
                    del self._untidy[native_id]
                    self._untidy_since.pop(native_id, None)
            if not self._untidy or time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def _result(self, handle: JobHandle) -> JobResult:
        workdir = Path(handle.workdir)
        native_id = handle.native_id
        if (workdir / CANCEL_MARKER).exists():
            return JobResult(state=JobState.CANCELED, message=f"{self.executor_name} job {native_id} canceled")
        result = script_kind.read_result(workdir, token=script_kind.handle_token(handle))
        if result.state is JobState.FAILED:
            self._learn_end(native_id)
        last = self._last.get(native_id)
        if last is not None and last.state is JobState.CANCELED:
            return JobResult(state=JobState.CANCELED, message=f"{self.executor_name} job {native_id} was canceled")
        if result.state is not JobState.FAILED:
            return result
        end = SLURM_ENDS.get(last.native) if last is not None and self.executor_name == "slurm" else None
        if end is not None:
            why = f" ({last.message})" if last.message else ""
            return attrs.evolve(result, retryable=end.retryable,
                                message=f"{end.cause}: {self.executor_name} job {native_id} ended {end.name}{why}; "
                                        f"{result.message}")
        if last is not None and last.state is JobState.FAILED and last.message:
            return attrs.evolve(result, message=f"{last.message} ({self.executor_name} job {native_id}); "
                                                f"{result.message}")
        if not result.retryable:
            return result  # the launcher recorded how the script ended: the script's own failure
        out = self._batch_output(native_id)
        output = f"; batch job output: {out}" if out else ""
        if self._wrapper_finished(native_id):  # the batch script ran to its end: the launcher failed
            return attrs.evolve(result, retryable=False, message=f"{result.message}{output}")
        return attrs.evolve(result, retryable=True,
                            message=f"job vanished: {self.executor_name} job {native_id} ended without a "
                                    f"record of how; {result.message}{output}")

    def _learn_end(self, native_id: str, patience: float = END_PATIENCE) -> None:
        """A failed job: ask the queue (a few times, while the batch system finishes it) how it
        ended: time limit, out of memory, node lost, preempted, canceled... For a Slurm job that
        already left the queue, ask sacct."""
        if not is_batch(self.executor):
            return
        last = self._last.get(native_id)
        if last is not None and last.state.is_final:
            return
        deadline = time.monotonic() + patience
        while True:
            seen = (self._query_queue([native_id]) or {}).get(native_id)
            if seen is None:
                found = self._sacct_end(native_id)
                if found is not None:
                    self._last[native_id] = found
                return
            if seen.state.is_final:
                self._last[native_id] = seen
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)

    def _sacct_end(self, native_id: str) -> _Seen | None:
        """How Slurm's accounting recorded a job's end (None if unknown); without slurmdbd,
        from the job completion log (``sacct -c``)."""
        if self.executor_name != "slurm":
            return None
        for extra in ([], ["-c"]):
            try:
                done = subprocess.run(["sacct", *extra, "-X", "-n", "-P", "-j", native_id, "-o", "State"],
                                      capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                log.debug("sacct for job %s: %s", native_id, exc)
                return None
            lines = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
            if done.returncode == 0 and lines:
                code = _SACCT_CODES.get(lines[-1])
                if code is None:
                    return None
                log.debug("job %s left the queue; sacct says %s", native_id, lines[-1])
                return _Seen(_CODE_STATES[code], native=code)
        return None

    def _wrapper_finished(self, native_id: str) -> bool:
        """Whether PSI/J's batch script recorded the launcher's exit code (it ran to its end)."""
        return (Path(self.config.work_directory).expanduser() / self.executor_name / f"{native_id}.ec").exists()

    def _batch_output(self, native_id: str) -> str:
        path = Path(self.config.work_directory).expanduser() / self.executor_name / f"{native_id}.out"
        return script_kind.tail(path, 500)

    def close(self) -> None:
        """Remove the PSI/J files of the jobs already read (their batch scripts write the exit
        code a moment after the launcher ends); running jobs are not touched."""
        self._tidy(wait=2.0)

    def outlives_controller(self, handle: JobHandle) -> bool:
        """Batch jobs run on the batch system whatever happens to the controller; a resumed
        scheduler follows them by their job id."""
        return True

    def cancel(self, handle: JobHandle) -> None:
        workdir = Path(handle.workdir)
        if self.poll([handle]).get(handle.native_id, JobState.QUEUED).is_final:
            return
        atomic.write_json(workdir / CANCEL_MARKER, {"native_id": handle.native_id, "at": time.time()})
        job = self._jobs.get(handle.native_id)
        try:
            if job is None:
                if is_batch(self.executor):
                    self.executor._run_command(self.executor.get_cancel_command(handle.native_id))
                elif detached.running(handle):  # never signal a process that got the job's pid later
                    os.killpg(int(handle.native_id), 15)
            else:
                self.executor.cancel(job)
        except Exception as exc:  # noqa: BLE001 - a job that just ended refuses to be canceled
            log.debug("cancel of %s: %s", handle.native_id, exc)

    def wait(self, handles: Sequence[JobHandle], timeout: float) -> bool:
        """Return when a job's status file shows it ended (checked every 0.2 s on the shared file
        system, no batch-system call) or after ``timeout`` (the scheduler's monitoring_interval),
        whichever comes first; the next :meth:`poll` then asks the queue once for all jobs."""
        deadline = time.monotonic() + max(0.0, timeout)
        while handles:
            for handle in handles:
                workdir = Path(handle.workdir)
                if (script_kind.ended_under(workdir, script_kind.handle_token(handle))
                        or (workdir / CANCEL_MARKER).exists()):
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(WAIT_STEP, remaining))
        return False

    @property
    def status_calls(self) -> int:
        """How many times the batch system's status command ran (for benchmarks)."""
        return self._status_calls


class SlurmRunner(PsijRunner):
    """The older scheduler's Slurm runner: ``SlurmRunner(partition, time_limit, memory, cpus_per_task,
    config={"modules": [...], "sbatch_options": {...}})``, a :class:`PsijRunner` on executor ``slurm``.

    Registered, and naming its handles, as ``"slurm"``; campaigns saved before it had its own
    name carry ``"psij"`` handles, which it follows (``follows``)."""

    name = "slurm"
    follows = frozenset({"psij"})

    def __init__(self, partition: str | None = None, time_limit: Any = None, memory: Any = None,
                 cpus_per_task: int = 1, config: Mapping[str, Any] | None = None, *,
                 account: str | None = None, nodes: int = 1) -> None:
        super().__init__(executor="slurm", queue=partition, account=account, time_limit=time_limit,
                         memory=memory, cpus_per_task=cpus_per_task, nodes=nodes, config=config)

    def to_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this runner (kept in the saved state for resume)."""
        return {"partition": self.queue, **self._common_kwargs()}


def _format_walltime(value: timedelta | None) -> str | None:
    return None if value is None else format_duration(value.total_seconds())


def _job_name(name: str) -> str:
    """Batch systems dislike spaces and odd characters in job names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:64]
