"""The PanDA backend: each trial is one PanDA task (one job), submitted with panda-client.

* **Submit**: the trial directory is prepared (``params.json``, ``aid2e_command.json``), packed
  with ``source_dir`` and the job wrapper into a ``sources.<uuid>.tar.gz`` sandbox
  (:mod:`aid2e_panda.sandbox`), uploaded with ``Client.putFile`` and run by a task whose
  parameters have the form prun builds (``Client.insertTaskParams``). The handle's
  ``native_id`` is the jediTaskID (also in ``extra``), so a restarted controller re-attaches.
* **Poll**: one ``get_tasks_detailed_info_since`` call lists the states of all the user's recent
  tasks; while any trial's task is not final, one ``getJobIDsJediTasksInTimeRange`` and one
  ``getJobStatus`` call tell queued from running jobs. A task missing from the listing is looked
  up by id; one the server does not know is *lost* (FAILED). A task that just ended costs one
  ``getUserJobMetadata`` call, once.
* **Results** travel back as the job's user metadata (see :mod:`aid2e_panda.job_wrapper`): the
  wrapper's status, ``result.json`` and stderr's tail are written into the trial directory and
  read by :func:`aid2e.jobs.script.read_result`, so values are exact and failures say the same
  as on every backend, plus PanDA's ``pilotErrorDiag``/``transExitCode``/task ``errorDialog``.
* **Cancel** kills the task (``Client.killTask``); it then polls as CANCELED once aborted.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from aid2e import atomic
from aid2e.backend import Backend
from aid2e.errors import ConfigError, SubmitError
from aid2e.jobs import script as script_kind
from aid2e.jobs import untrusted
from aid2e.structure import at_least, check, positive_int, structure
from aid2e.types import JobHandle, JobRequest, JobResult, JobState, Resources, ScriptJob
from aid2e.units import duration_seconds, size_mb

from . import auth, sandbox
from .client import PandaAPI, PandaServerError, check_urls

log = logging.getLogger(__name__)

#: Task states after which nothing more happens.
TASK_FINAL = {"done", "finished", "failed", "broken", "aborted", "exhausted"}
#: Task states before any job can run.
TASK_QUEUED = {"registered", "defined", "assigned", "ready", "pending", "scouting", "scouted", "topreprocess",
               "preprocessing", "paused", "throttled", "submitting", "rerefine", "prepared"}
#: Job states of a job on a worker node.
JOB_ACTIVE = {"sent", "starting", "running", "holding", "transferring", "merging"}
JOB_QUEUED = {"pending", "defined", "waiting", "assigned", "throttled", "activated"}
#: How far back ``adopt`` looks for a task an earlier controller submitted (seconds).
ADOPT_WINDOW = 30 * 86400.0
#: Seconds subtracted from the earliest submission time for the listing's ``since`` (clock skew).
SINCE_MARGIN = 86400.0
#: Characters of one job's user metadata read at most (the wrapper publishes at most 64 KiB of result).
MAX_METADATA = 256 * 1024


_non_empty = check("a non-empty string", lambda v: bool(v.strip()))


@frozen(kw_only=True)
class PanDAConfig:
    """Options of the PanDA backend (the ``config`` dict of :class:`PanDARunner`).

    * ``max_in_flight``: trials (tasks) in flight, the runner's ``capacity``;
    * ``poll_interval``: seconds between status checks (each check is a few server calls);
    * ``attempts``, ``backoff``, ``max_backoff``: each server call is tried ``attempts`` times,
      waiting ``backoff`` seconds after the first failure, doubling up to ``max_backoff``;
    * ``python``: the interpreter on the grid node (found after ``init_env`` is sourced);
    * ``nickname``: the grid nickname in task names ``user.<nickname>.aid2e...`` (default
      ``$PANDA_NICKNAME``, ``$RUCIO_ACCOUNT``, else the local user name);
    * ``max_attempt``: PanDA's attempts per job (1: a failed trial is not rerun by PanDA);
    * ``min_credential_validity``: seconds a token or proxy must still be valid at start;
    * ``verbose``: panda-client's verbose output (it never prints the token).
    """

    max_in_flight: int = field(default=100, validator=positive_int)
    poll_interval: float = field(default=10.0, validator=at_least(0.0))
    attempts: int = field(default=4, validator=positive_int)
    backoff: float = field(default=2.0, validator=at_least(0.0))
    max_backoff: float = field(default=60.0, validator=at_least(0.0))
    python: str = field(default="python3", validator=_non_empty)
    nickname: str | None = field(default=None, validator=_non_empty)
    max_attempt: int = field(default=1, validator=positive_int)
    min_credential_validity: float = field(default=auth.DEFAULT_MIN_VALIDITY, validator=at_least(0.0))
    verbose: bool = False


def _structure_config(config: Mapping[str, Any] | PanDAConfig | None, max_in_flight: int | None) -> PanDAConfig:
    checked = structure(PanDAConfig, config, what="panda config")
    if max_in_flight is not None:
        checked = structure(PanDAConfig, {**attrs.asdict(checked), "max_in_flight": max_in_flight},
                            what="PanDARunner")
    return checked


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"PanDARunner {name} must be a positive integer, got {value!r}")
    return value


def _clean(text: str) -> str:
    """A piece of a dataset/task name: letters, digits, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


def _task_suffix(request: JobRequest) -> str:
    """The end of a trial's task name: its index and its attempt's token (so ``adopt`` finds it)."""
    tag = hashlib.sha256(request.token.encode()).hexdigest()[:16] if request.token else uuid.uuid4().hex[:16]
    return f".t{request.trial_index}.{tag}/"


def _since(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp - SINCE_MARGIN, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _task_id(handle: JobHandle) -> int | None:
    value = handle.extra.get("jediTaskID", handle.native_id)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class PanDARunner(Backend):
    """Run trials on the grid, one PanDA task per trial.

    The arguments are those of the older AID2E scheduler's PanDA runner: ``name`` (a label in
    task names, default the experiment's name), ``cloud``, ``queue`` (the PanDA site/queue),
    ``vo``, ``init_env`` (shell commands, or the path of a script, sourced on the node before
    the trial runs), ``source_dir`` (shipped as the sandbox; the job runs in its copy),
    ``exclude_source_files`` (glob patterns), ``max_walltime`` (seconds, or a duration like ``"10h"``), ``core_count``,
    ``total_memory`` (MB, or a size like ``"4G"``) and ``config`` (a dict of :class:`PanDAConfig` fields).
    ``max_in_flight`` may be given here or in ``config``.
    The server and the credentials come from panda-client's environment variables
    (``PANDA_URL_SSL``, ``PANDA_URL``, ``PANDA_AUTH``, ...; see the plugin's README).
    """

    name = "panda"
    kinds = frozenset({"script"})

    def __init__(self, name: str | None = None, cloud: str = "US", queue: str = "BNL_PanDA_1", vo: str = "wlcg",
                 init_env: str | None = None, source_dir: str | os.PathLike[str] | None = None,
                 exclude_source_files: Sequence[str] = (), max_walltime: int | str = 36000, core_count: int = 1,
                 total_memory: int | str = 4000, config: Mapping[str, Any] | PanDAConfig | None = None,
                 max_in_flight: int | None = None) -> None:
        self.label = name
        for key, value in (("cloud", cloud), ("queue", queue), ("vo", vo)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"PanDARunner {key} must be a non-empty string, got {value!r}")
        self.cloud, self.queue, self.vo = cloud, queue, vo
        self.max_walltime = (_positive_int("max_walltime", max_walltime) if isinstance(max_walltime, int)
                             else math.ceil(duration_seconds(max_walltime, what="PanDARunner max_walltime") or 0))
        self.core_count = _positive_int("core_count", core_count)
        self.total_memory = (_positive_int("total_memory", total_memory) if isinstance(total_memory, int)
                             else size_mb(total_memory, what="PanDARunner total_memory") or 0)
        if isinstance(exclude_source_files, str):
            exclude_source_files = (exclude_source_files,)
        self.exclude_source_files = tuple(str(p) for p in exclude_source_files)
        self.source_dir: Path | None = None
        if source_dir is not None:
            path = Path(source_dir).expanduser().resolve()
            if not path.is_dir():
                raise ConfigError(f"PanDARunner source_dir {path} is not a directory")
            self.source_dir = path
        self.init_env = init_env
        self.init_env_file: Path | None = None
        if init_env is not None:
            if not isinstance(init_env, str) or not init_env.strip():
                raise ConfigError(f"PanDARunner init_env must be shell commands or a script path, got {init_env!r}")
            candidate = Path(init_env).expanduser()
            if "\n" not in init_env and candidate.is_file():
                self.init_env_file = candidate.resolve()
        self.config = _structure_config(config, max_in_flight)
        self.poll_interval = self.config.poll_interval
        self.api = PandaAPI(attempts=self.config.attempts, backoff=self.config.backoff,
                            max_backoff=self.config.max_backoff, verbose=self.config.verbose)
        self.credentials: auth.Credentials | None = None
        self._results: dict[str, JobResult] = {}
        self._canceled: set[str] = set()

    def __repr__(self) -> str:
        return (f"PanDARunner(queue={self.queue!r}, cloud={self.cloud!r}, vo={self.vo!r}, "
                f"max_in_flight={self.capacity})")

    @property
    def capacity(self) -> int:
        return self.config.max_in_flight

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Check the credentials and the server address now, before any trial is generated."""
        self.credentials = auth.check_credentials(self.config.min_credential_validity)
        server = check_urls(self.api.client)
        log.info("PanDA server %s, auth %s from %s", server, self.credentials.mode, self.credentials.source)

    def status(self) -> str:
        """The credentials and the server address as :meth:`start` checks them (the server itself
        is contacted when a run starts)."""
        try:
            credentials = auth.check_credentials(self.config.min_credential_validity)
            server = check_urls(self.api.client)
        except ConfigError as exc:
            return f"not ready: {' '.join(str(exc).split())}"
        return (f"ready, queue {self.queue} on {server} (credentials: {credentials.mode} from {credentials.source}; "
                "the server is contacted when the run starts)")

    @property
    def nickname(self) -> str:
        """The grid nickname in task names: config ``nickname``, else ``$PANDA_NICKNAME``,
        ``$RUCIO_ACCOUNT`` or the local user."""
        return _clean(self.config.nickname or os.environ.get("PANDA_NICKNAME") or os.environ.get("RUCIO_ACCOUNT")
                      or getpass.getuser())

    # ------------------------------------------------------------ submit
    def submit(self, request: JobRequest) -> JobHandle:
        if not isinstance(request.job, ScriptJob):
            kind = getattr(request.job, "kind", type(request.job).__name__)
            raise SubmitError(f"the panda backend runs script jobs, not {kind!r} jobs")
        auth.check_credentials(min_validity=0)  # an expired token stops the campaign with a clear error
        try:
            workdir = script_kind.prepare_workdir(request)
            (workdir / sandbox.job_wrapper.METADATA_FILE).unlink(missing_ok=True)
            command = _read_command(workdir)
            grid, files = sandbox.grid_command(request.job, command["env"], workdir, self.source_dir,
                                               self.config.python)
        except (OSError, ValueError) as exc:
            raise SubmitError(f"could not prepare the trial directory {request.workdir}: {exc}") from exc
        label = _clean(self.label or request.experiment)
        task_name = f"user.{self.nickname}.aid2e.{label}{_task_suffix(request)}"
        archive_name = f"sources.{uuid.uuid4()}.tar.gz"
        tmp = Path(tempfile.mkdtemp(prefix="aid2e-panda-"))
        try:
            archive = tmp / archive_name
            try:
                sandbox.build(archive, workdir=workdir, source_dir=self.source_dir, exclude=self.exclude_source_files,
                              command=grid, files=files, init_env=self.init_env, init_env_file=self.init_env_file,
                              python=self.config.python)
            except OSError as exc:
                raise SubmitError(f"could not pack the sandbox of {workdir}: {exc}") from exc
            try:
                self.api.upload(str(archive))
                params = self.task_params(task_name, archive_name, request.resources)
                task_id = self.api.submit_task(params)
            except PandaServerError as exc:
                raise SubmitError(str(exc)) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("trial %d: PanDA task %d (%s)", request.trial_index, task_id, task_name)
        handle = JobHandle(backend=self.name, native_id=str(task_id), workdir=str(workdir), submitted_at=time.time(),
                           extra={"jediTaskID": task_id, "taskName": task_name, "sandbox": archive_name,
                                  "server": self.api.server})
        self._results.pop(handle.native_id, None)
        self._canceled.discard(handle.native_id)
        return handle

    def task_params(self, task_name: str, archive_name: str, resources: Resources | None = None) -> dict[str, Any]:
        """Task parameters in the form prun builds for ``prun --exec "bash aid2e_panda_job.sh"
        --noBuild --nJobs 1`` with the sandbox already uploaded. The trial's ``resources``
        (scheduler config 'resources': cpus, memory, walltime, queue) override the runner's
        ``core_count``, ``total_memory``, ``max_walltime`` and ``queue``."""
        from pandaclient import PandaToolsPkgInfo, PsubUtils

        wanted = resources or Resources()
        try:
            cores = wanted.cpus if wanted.cpus != 1 else self.core_count
            memory = wanted.memory_mb() or self.total_memory
            walltime = wanted.walltime_seconds() or self.max_walltime
        except ValueError as exc:
            raise SubmitError(f"config 'resources': {exc}") from exc
        site = wanted.queue or self.queue
        client = self.api.client
        match = re.search(r"(http.*://[^/]+)/", client.baseURLSSL)
        log_ds = re.sub("/$", ".log/", task_name)
        params: dict[str, Any] = {
            "taskName": task_name,
            "uniqueTaskName": True,
            "vo": self.vo,
            "architecture": "",
            "transUses": "",
            "transHome": None,
            "transPath": "runGen-00-00-02",
            "processingType": f"panda-client-{PandaToolsPkgInfo.release_version}-jedi-run",
            "prodSourceLabel": "user",
            "site": site,
            "cloud": self.cloud,
            "excludedSite": [],
            "includedSite": None,
            "cliParams": f"prun --exec {sandbox.EXEC!r} --outDS {task_name} --noBuild --nJobs 1 "
                         f"--site {site} --maxWalltime {walltime} --nCore {cores} "
                         f"--memory {memory} --vo {self.vo}",
            "noEmail": True,
            "nMaxFilesPerJob": 200,
            "maxWalltime": walltime,
            "coreCount": cores,
            "ramCount": memory,
            "ramCountUnit": "MBPerCoreFixed",
            "respectSplitRule": True,
            "maxAttempt": self.config.max_attempt,
            "osInfo": PsubUtils.get_os_information(),
            "noInput": True,
            "nEvents": 1,
            "nEventsPerJob": 1,
            "log": {"dataset": log_ds, "container": log_ds, "type": "template", "param_type": "log",
                    "value": f"{log_ds[:-1]}.$JEDITASKID.${{SN}}.log.tgz"},
            "jobParameters": [
                {"type": "constant", "value": '-j "" --sourceURL ${SURL}'},
                {"type": "constant", "value": "-r ."},
                {"type": "constant", "value": "__delimiter__", "hidden": True},
                {"type": "constant", "value": f"-a {archive_name}"},
                {"type": "constant", "value": '-p "', "padding": False},
                *PsubUtils.convertParamStrToJediParam(sandbox.EXEC, {}, "", True, False, includeIO=False),
                {"type": "constant", "value": '"'},
            ],
        }
        if self.config.max_attempt == 1:
            params["disableAutoRetry"] = 1
        if match is not None:
            params["sourceURL"] = match.group(1)
        return params

    def adopt(self, request: JobRequest) -> JobHandle | None:
        """The task an earlier controller submitted for ``request`` (found by the attempt's token
        in its name among the user's tasks of the last :data:`ADOPT_WINDOW` seconds), or None."""
        if not request.token:
            return None
        suffix = _task_suffix(request)
        label = f".aid2e.{_clean(self.label or request.experiment)}"
        for task in self.api.tasks(since=_since(time.time() - ADOPT_WINDOW)):
            name = str(task.get("taskName", ""))
            if name.endswith(label + suffix) and "jediTaskID" in task:
                task_id = int(task["jediTaskID"])
                return JobHandle(backend=self.name, native_id=str(task_id), workdir=request.workdir,
                                 submitted_at=time.time(),
                                 extra={"jediTaskID": task_id, "taskName": name, "server": self.api.server})
        return None

    # ------------------------------------------------------------ poll
    def poll(self, handles: Sequence[JobHandle]) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        pending: dict[int, JobHandle] = {}
        for handle in handles:
            if handle.native_id in self._results:
                states[handle.native_id] = self._results[handle.native_id].state
                continue
            task_id = _task_id(handle)
            if task_id is None:
                self._results[handle.native_id] = JobResult(
                    state=JobState.FAILED, message=f"handle {handle.native_id!r} holds no PanDA jediTaskID")
                states[handle.native_id] = JobState.FAILED
                continue
            pending[task_id] = handle
        if not pending:
            return states
        since = _since(min(h.submitted_at for h in pending.values()))
        tasks = {int(t["jediTaskID"]): t for t in self.api.tasks(since=since, n_tasks=max(1000, 2 * len(pending)))
                 if "jediTaskID" in t}
        for task_id in [t for t in pending if t not in tasks]:  # not in the window, or unknown
            found = self.api.tasks(filters={"jediTaskID": str(task_id)})
            if found:
                tasks[task_id] = found[0]
        job_specs: dict[int, list[Any]] = {}
        known = [t for t in pending if t in tasks]
        need_jobs = [t for t in known if not (str(tasks[t].get("status")) == "aborted" or t in self._canceled_ids())]
        if need_jobs:
            ids = self.api.job_ids(since)
            wanted = {t: ids.get(t, []) for t in need_jobs}
            specs = self.api.jobs(sorted({i for v in wanted.values() for i in v}))
            job_specs = {t: [specs[i] for i in v if i in specs] for t, v in wanted.items()}
        for task_id, handle in pending.items():
            task = tasks.get(task_id)
            if task is None:
                result = JobResult(state=JobState.FAILED, message=(
                    f"PanDA task {task_id} is unknown to the server {self.api.server} (lost: deleted, or "
                    "submitted to another server)"))
                self._results[handle.native_id] = result
                states[handle.native_id] = result.state
                continue
            status = str(task.get("status") or "")
            jobs = job_specs.get(task_id, [])
            if status in TASK_FINAL:
                result = self._final_result(handle, task_id, task, jobs)
                self._results[handle.native_id] = result
                states[handle.native_id] = result.state
            else:
                states[handle.native_id] = _live_state(status, jobs)
        return states

    def _canceled_ids(self) -> set[int]:
        return {int(n) for n in self._canceled if n.isdigit()}

    def _final_result(self, handle: JobHandle, task_id: int, task: Mapping[str, Any], jobs: list[Any]) -> JobResult:
        status = str(task.get("status"))
        dialog = _plain(task.get("errorDialog"))
        if status == "aborted":
            return JobResult(state=JobState.CANCELED,
                             message=f"PanDA task {task_id} was killed" + (f": {dialog}" if dialog else ""))
        metadata = self.api.metadata(task_id)
        published = _aid2e_metadata(metadata)
        job = _last(jobs)
        panda = _job_diag(job, dialog)
        exit_code = _int(getattr(job, "transExitCode", None)) if job is not None else None
        if published is None:
            what = "ended" if status == "done" else f"ended {status}"
            return JobResult(state=JobState.FAILED, exit_code=exit_code or None, message=(
                f"PanDA task {task_id} {what} without publishing the trial's result (userJobMetadata.json)"
                + (f"; {panda}" if panda else "")))
        try:
            _write_back(Path(handle.workdir), published)
        except (OSError, ValueError, RecursionError) as exc:  # a directory at result.json, a status with NaN
            why = exc if isinstance(exc, OSError) else "its status is not JSON aid2e writes"
            return JobResult(state=JobState.FAILED, message=f"could not write the result of task {task_id} into "
                             f"{handle.workdir}: {why}")
        result = script_kind.read_result(handle.workdir)
        published_status = published.get("status")
        note = published_status.get("error_note") if isinstance(published_status, dict) else None
        if result.state is JobState.FAILED and isinstance(note, str) and note:
            result = attrs.evolve(result, message=f"{result.message}; {note[:300]}")
        if result.state is JobState.FAILED and panda and status != "done":
            result = attrs.evolve(result, message=f"{result.message}; PanDA task {task_id}: {panda}")
        return result

    # ------------------------------------------------------------ result, cancel
    def result(self, handle: JobHandle) -> JobResult:
        if handle.native_id not in self._results:
            state = self.poll([handle])[handle.native_id]
            if not state.is_final:
                raise RuntimeError(f"PanDA task {handle.native_id} has not ended ({state.value})")
        return self._results[handle.native_id]

    def outlives_controller(self, handle: JobHandle) -> bool:
        """Grid tasks run on the PanDA server's side whatever happens to the controller."""
        return True

    def cancel(self, handle: JobHandle) -> None:
        task_id = _task_id(handle)
        if task_id is None or handle.native_id in self._results:
            return
        if self.poll([handle])[handle.native_id].is_final:
            return  # it ended first (while this controller was not looking): its own result stands
        try:
            message = self.api.kill_task(task_id)
        except PandaServerError as exc:
            raise SubmitError(str(exc)) from exc
        self._canceled.add(handle.native_id)
        log.info("killed PanDA task %d: %s", task_id, message)


# ------------------------------------------------------------------ helpers
def _read_command(workdir: Path) -> dict[str, Any]:
    import json

    return json.loads((workdir / script_kind.COMMAND_FILE).read_text())


def _live_state(task_status: str, jobs: list[Any]) -> JobState:
    job = _last(jobs)
    job_status = str(getattr(job, "jobStatus", "") or "") if job is not None else ""
    if job_status in JOB_ACTIVE:
        return JobState.ACTIVE
    if job_status in JOB_QUEUED or task_status in TASK_QUEUED or not job_status:
        return JobState.QUEUED if task_status != "aborting" else JobState.ACTIVE
    return JobState.ACTIVE  # a job ended, its task is finishing


def _last(jobs: list[Any]) -> Any:
    return max(jobs, key=lambda j: int(j.PandaID)) if jobs else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _plain(value: Any) -> str:
    text = re.sub(r"<[^>]+>", "", str(value or "")).strip()
    return "" if text in ("NULL", "None") else " ".join(text.split())


def _job_diag(job: Any, dialog: str) -> str:
    parts = []
    if job is not None:
        code = _int(getattr(job, "pilotErrorCode", None))
        diag = _plain(getattr(job, "pilotErrorDiag", None))
        if code or diag:
            parts.append(f"pilotErrorCode {code or 0}: {diag}" if diag else f"pilotErrorCode {code}")
        trans = _int(getattr(job, "transExitCode", None))
        if trans:
            parts.append(f"transExitCode {trans}")
        for attr in ("exeErrorDiag", "supErrorDiag", "ddmErrorDiag", "taskBufferErrorDiag"):
            text = _plain(getattr(job, attr, None))
            if text:
                parts.append(f"{attr} {text}")
    if dialog:
        parts.append(f"task errorDialog: {dialog}")
    return "; ".join(parts)


def _aid2e_metadata(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The aid2e record of the task's last job that published one."""
    best = None
    for key in sorted(metadata, key=lambda k: (_int(k) or 0)):
        value = metadata[key]
        if isinstance(value, str):
            if len(value) > MAX_METADATA:  # what the job published is untrusted: bounded, parsed safely
                log.warning("PanDA job %s published %d characters of metadata; ignored", key, len(value))
                continue
            try:
                value = untrusted.parse_json(value)
            except ValueError:
                continue
        if isinstance(value, dict) and isinstance(value.get("aid2e"), dict):
            best = value["aid2e"]
    return best


def _write_back(workdir: Path, published: Mapping[str, Any]) -> None:
    """Recreate the trial's output files from the published metadata."""
    workdir.mkdir(parents=True, exist_ok=True)
    status = published.get("status")
    if isinstance(status, dict):
        atomic.write_json(workdir / script_kind.STATUS_FILE, status)
    else:
        (workdir / script_kind.STATUS_FILE).unlink(missing_ok=True)
    result = published.get("result")
    if isinstance(result, str):  # more than read_result reads is cut: it then fails as too large
        atomic.write_bytes(workdir / script_kind.RESULT_FILE, result[:script_kind.RESULT_LIMIT + 1].encode())
    else:
        (workdir / script_kind.RESULT_FILE).unlink(missing_ok=True)
    stderr = published.get("stderr_tail")
    stderr_path = workdir / script_kind.STDERR_FILE
    if isinstance(stderr, str) and stderr and not os.path.lexists(stderr_path):
        atomic.write_bytes(stderr_path, (stderr[-script_kind.TAIL_CHARS:] + "\n").encode())


class PanDAiDDSRunner(PanDARunner):
    """The older scheduler's name for the PanDA runner (it went through iDDS; this one submits
    PanDA tasks directly). Accepts its extra arguments ``source_dir_parent_level`` and
    ``enable_separate_log``, which have no effect here."""

    def __init__(self, *args: Any, source_dir_parent_level: int = 1, enable_separate_log: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
