"""The ``script`` job kind: a program run as a child process, argv only, never through a shell.

Contract with the script (files in the trial directory, which is its working directory):

* ``AID2E_PARAMS_FILE`` (also ``JOB_PARAMS_FILE``): ``params.json``, a JSON object of the parameters;
* ``AID2E_RESULT_FILE``: ``result.json``, where the script writes ``{metric: number}`` or
  ``{metric: {"mean": m, "sem": s}}``;
* ``AID2E_TRIAL_INDEX``, ``AID2E_EXPERIMENT``;
* stdout and stderr go to ``stdout.txt`` and ``stderr.txt``.

Backends run :func:`launcher_argv` (the stdlib-only :mod:`aid2e.jobs.launch`), which records
the exit code in ``aid2e_status.json`` so a job's end is known even if the controller was
gone at that moment. :func:`read_result` turns those files into a :class:`JobResult`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import atomic
from ..errors import ConfigError
from ..types import JobRequest, JobResult, JobState, ScriptJob, infeasible_reason, parse_metrics

PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
COMMAND_FILE = "aid2e_command.json"
STATUS_FILE = "aid2e_status.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
TAIL_CHARS = 2000


def script_job(path: str | os.PathLike[str], args: tuple[str, ...] = ()) -> ScriptJob:
    """A script job for the file at ``path``: ``.py`` with this interpreter, ``.sh`` with bash,
    anything else run directly (it must be executable)."""
    script = Path(path).expanduser()
    if not script.exists():
        raise ConfigError(f"objective script not found: {script}")
    if not script.is_file():
        raise ConfigError(f"objective script is not a file: {script}")
    script = script.resolve()
    if script.suffix == ".py":
        argv: tuple[str, ...] = (sys.executable, str(script))
    elif script.suffix == ".sh":
        argv = ("bash", str(script))
    else:
        if not os.access(script, os.X_OK):
            raise ConfigError(
                f"objective script {script} is not executable: chmod +x it, or name it .py or .sh"
            )
        argv = (str(script),)
    return ScriptJob(argv=argv + tuple(str(a) for a in args))


def prepare_workdir(request: JobRequest) -> Path:
    """Create the trial directory and write the parameters and launch description into it."""
    if not isinstance(request.job, ScriptJob):
        raise TypeError(f"prepare_workdir needs a script job, got {request.job.kind!r}")
    workdir = Path(request.workdir).resolve()
    atomic.private_dir(workdir)
    for stale in (RESULT_FILE, STATUS_FILE, STDOUT_FILE, STDERR_FILE):  # a rerun starts clean
        (workdir / stale).unlink(missing_ok=True)
    params_path = workdir / PARAMS_FILE
    atomic.write_json(params_path, request.parameters)
    env = {
        "AID2E_PARAMS_FILE": str(params_path),
        "JOB_PARAMS_FILE": str(params_path),
        "AID2E_RESULT_FILE": str(workdir / RESULT_FILE),
        "AID2E_TRIAL_INDEX": str(request.trial_index),
        "AID2E_EXPERIMENT": request.experiment,
        **request.job.env,
    }
    atomic.write_json(workdir / COMMAND_FILE, {"argv": list(request.job.argv), "env": env,
                                               "on_cancel": list(request.job.on_cancel),
                                               "token": request.token})
    return workdir


def launcher_argv(workdir: str | os.PathLike[str], python: str | None = None) -> list[str]:
    """The command a backend runs for a prepared script job."""
    return [python or sys.executable, "-m", "aid2e.jobs.launch", str(Path(workdir).resolve())]


def read_status(workdir: str | os.PathLike[str]) -> dict | None:
    """The launcher's status record, or ``None`` if it has not written one."""
    try:
        return json.loads((Path(workdir) / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def tail(path: Path, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of a text file ('' if it is missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


def read_command_token(workdir: str | os.PathLike[str]) -> str | None:
    """The attempt token the trial directory was prepared under (None: never prepared, or unreadable)."""
    try:
        command = json.loads((Path(workdir) / COMMAND_FILE).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    token = command.get("token", "") if isinstance(command, dict) else None
    return token if isinstance(token, str) else None


def status_token_matches(status: dict | None, token: str | None) -> bool:
    """Whether a launcher status record was written under ``token`` (any record when no token
    is asked for: jobs of an older aid2e carry none)."""
    if not token:
        return True
    return isinstance(status, dict) and status.get("token") == token


def prepared_under(workdir: str | os.PathLike[str], token: str | None) -> bool:
    """Whether the trial directory was prepared for the attempt ``token`` (with no token asked
    for: prepared at all). A directory an older campaign or an earlier attempt left is not."""
    found = read_command_token(workdir)
    return found is not None and (not token or found == token)


def launched_under(workdir: str | os.PathLike[str], token: str | None) -> dict | None:
    """The launcher's status record if the job of attempt ``token`` started in ``workdir``
    (None: not prepared for this attempt, or its launcher has not written a status yet)."""
    if not prepared_under(workdir, token):
        return None
    status = read_status(workdir)
    return status if isinstance(status, dict) and status_token_matches(status, token) else None


def ended_under(workdir: str | os.PathLike[str], token: str | None) -> bool:
    """Whether the launcher recorded the end of attempt ``token``'s job in ``workdir``."""
    status = read_status(workdir)
    return (isinstance(status, dict) and status_token_matches(status, token)
            and ("exit_code" in status or "signal" in status))


def read_result(workdir: str | os.PathLike[str], *, canceled: bool = False, token: str | None = None) -> JobResult:
    """Turn the files a finished script job left into a :class:`JobResult`.

    Never invents a value: a missing status, a non-zero exit, a missing or malformed result
    file all become FAILED with the reason (and stderr's tail). With ``token``, only a status
    written under that attempt token counts: files another campaign or an earlier attempt left
    in the directory are never taken for this attempt's result.
    """
    workdir = Path(workdir)
    status = read_status(workdir)
    if status is not None and not status_token_matches(status, token):
        return JobResult(state=JobState.FAILED, retryable=True,
                         message=f"the status file in {workdir} belongs to another run (its attempt token is "
                                 "not this attempt's): this attempt left no status of its own")
    stderr_tail = tail(workdir / STDERR_FILE)
    where = f" (stderr: {stderr_tail})" if stderr_tail else ""
    if canceled:
        return JobResult(state=JobState.CANCELED, message="canceled")
    if status is None or "exit_code" not in status and "signal" not in status:
        return JobResult(state=JobState.FAILED, retryable=True,
                         message=f"job ended without recording an exit status in {workdir}{where}")
    if status.get("error"):
        return JobResult(state=JobState.FAILED, exit_code=status.get("exit_code"),
                         message=f"could not start the script: {status['error']}")
    if status.get("signal"):
        return JobResult(state=JobState.FAILED,
                         message=f"script killed by signal {status['signal']}{where}")
    code = status["exit_code"]
    if code != 0:
        return JobResult(state=JobState.FAILED, exit_code=code,
                         message=f"script exited with code {code}{where}")
    result_path = workdir / RESULT_FILE
    try:
        text = result_path.read_text()
    except FileNotFoundError:
        return JobResult(state=JobState.FAILED, exit_code=0,
                         message=f"script exited 0 but wrote no result to $AID2E_RESULT_FILE ({result_path})")
    try:
        value = json.loads(text)
    except ValueError as exc:
        return JobResult(state=JobState.FAILED, exit_code=0,
                         message=f"result file {result_path} is not valid JSON: {exc}")
    infeasible = infeasible_reason(value)
    if infeasible is not None:
        return JobResult(state=JobState.COMPLETED, exit_code=0, infeasible=infeasible)
    try:
        metrics = parse_metrics(value)
    except ValueError as exc:
        return JobResult(state=JobState.FAILED, exit_code=0,
                         message=f"bad result in {result_path}: {exc}")
    return JobResult(state=JobState.COMPLETED, metrics=metrics, exit_code=0)

