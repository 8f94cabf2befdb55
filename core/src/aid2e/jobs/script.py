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

import os
import sys
from pathlib import Path

from .. import atomic
from ..errors import ConfigError
from ..types import (
    JobHandle,
    JobRequest,
    JobResult,
    JobState,
    ScriptJob,
    infeasible_reason,
    parse_metrics,
    parse_output,
)
from . import untrusted
from .files import COMMAND_FILE, PARAMS_FILE, RESULT_FILE, STALE_FILES, STATUS_FILE, STDERR_FILE
from .files import STDOUT_FILE as STDOUT_FILE  # the contract's names, also from here

TAIL_CHARS = 2000
#: Bytes read at most from ``result.json`` and ``aid2e_status.json`` (larger ones fail the trial).
RESULT_LIMIT = untrusted.JSON_LIMIT
STATUS_LIMIT = 64 * 1024


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
    # a rerun starts clean; what an earlier attempt left may be a FIFO or a symlink: never opened, removed
    for stale in STALE_FILES:
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
                                               "token": request.token, "returns": request.job.returns})
    return workdir


def launcher_argv(workdir: str | os.PathLike[str], python: str | None = None) -> list[str]:
    """The command a backend runs for a prepared script job."""
    return [python or sys.executable, "-m", "aid2e.jobs.launch", str(Path(workdir).resolve())]


def _load_status(workdir: Path) -> tuple[dict | None, str | None]:
    """``(status record, None)``; ``(None, None)`` if the launcher has not written one;
    ``(None, reason)`` if what is there cannot be a status record (the trial may have replaced it)."""
    try:
        value = untrusted.parse_json(untrusted.read_text(workdir / STATUS_FILE, STATUS_LIMIT))
    except FileNotFoundError:
        return None, None
    except untrusted.UntrustedFileError as exc:
        return None, str(exc)
    except ValueError as exc:
        return None, f"{STATUS_FILE} is not valid JSON: {exc}"
    problem = _status_problem(value)
    return (None, f"{STATUS_FILE} is not a launcher status: {problem}") if problem else (value, None)


def _status_problem(value: object) -> str | None:
    """What makes ``value`` not a status record the launcher writes (None if it is one)."""
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    for key, kind in (("pid", int), ("child_pid", int), ("exit_code", int), ("signal", str), ("error", str),
                      ("token", str), ("started_at", (int, float)), ("ended_at", (int, float))):
        item = value.get(key)
        if item is not None and (isinstance(item, bool) or not isinstance(item, kind)):
            return f"{key!r} is a {type(item).__name__}"
    for key in ("pid", "child_pid", "exit_code"):
        if isinstance(value.get(key), int) and not -(2**31) <= value[key] < 2**32:
            return f"{key!r} is out of range"
    return None


def read_status(workdir: str | os.PathLike[str]) -> dict | None:
    """The launcher's status record, or ``None`` if there is none it wrote (missing, or a file
    the trial replaced it with: :func:`read_result` says what is wrong with it)."""
    return _load_status(Path(workdir))[0]


def tail(path: Path, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` bytes of a text file in a trial directory ('' if it is missing; if it
    cannot be read safely, why, in brackets)."""
    try:
        return untrusted.read_tail(path, limit).strip()
    except untrusted.UntrustedFileError as exc:
        return f"[{exc}]"
    except OSError:
        return ""


def _read_command(workdir: str | os.PathLike[str]) -> dict | None:
    """The launch description the controller wrote (None: never prepared, or unreadable)."""
    try:
        command = untrusted.parse_json(untrusted.read_text(Path(workdir) / COMMAND_FILE, STATUS_LIMIT))
    except (OSError, ValueError):  # missing, replaced by the trial, not JSON
        return None
    return command if isinstance(command, dict) else None


def read_command_token(workdir: str | os.PathLike[str]) -> str | None:
    """The attempt token the trial directory was prepared under (None: never prepared, or unreadable)."""
    command = _read_command(workdir)
    token = command.get("token", "") if command is not None else None
    return token if isinstance(token, str) else None


def read_returns(workdir: str | os.PathLike[str]) -> str:
    """What the job prepared in ``workdir`` writes to its result file (``ScriptJob.returns``;
    ``"metrics"`` when not said, as jobs of an older aid2e)."""
    command = _read_command(workdir)
    returns = command.get("returns") if command is not None else None
    return "output" if returns == "output" else "metrics"


def handle_token(handle: JobHandle) -> str | None:
    """The attempt token the scheduler put in a job's handle (None for handles without one)."""
    token = handle.extra.get("token")
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


_NOT_HEADLINES = ("Traceback (most recent call last):", "During handling of the above exception",
                  "The above exception was the direct cause")


def headline(stderr_tail: str, limit: int | None = 300) -> str:
    """The meaningful line of a failed program's stderr tail: for a Python traceback the
    exception line (``ValueError: bad geometry``), otherwise the last non-blank line; '' if
    there is none. Cut to ``limit`` characters (``None``: not cut)."""
    lines = [line.rstrip() for line in stderr_tail.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(_NOT_HEADLINES[0])]
    line = ""
    if starts:
        # after the last "Traceback" header: indented frame lines, then the exception line
        line = next((text for text in lines[starts[-1] + 1:] if text.strip() and not text[0].isspace()), "")
    if not line:
        line = next((text.strip() for text in reversed(lines)
                     if text.strip() and not text.strip().startswith(_NOT_HEADLINES)
                     and set(text.strip()) - set("^~ ")), "")
    return line if limit is None else _cut(line, limit)


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _stderr_note(stderr_tail: str) -> str:
    """What a failure message adds from stderr ('' without stderr): ``" (stderr: <tail>)"`` for
    one line; for several, ``": <headline>"`` then the tail on the lines below, so the message's
    first line (what progress lines, ``aid2e status`` and reports show) is the failure and its
    meaningful line, e.g. ``script exited with code 1: ValueError: bad geometry``."""
    if not stderr_tail:
        return ""
    if "\n" not in stderr_tail:
        return f" (stderr: {stderr_tail})"
    first = headline(stderr_tail, None)
    lead = f": {_cut(first)}" if first else ""
    return f"{lead}\nstderr (its end):\n{stderr_tail}"


def read_result(workdir: str | os.PathLike[str], *, canceled: bool = False, token: str | None = None) -> JobResult:
    """Turn the files a finished script job left into a :class:`JobResult`.

    Never invents a value and never raises: a missing status, a non-zero exit, a missing,
    malformed or hostile result or status file (see :mod:`aid2e.jobs.untrusted`) all become
    FAILED with the reason; a failing script's message leads with the meaningful line of its
    stderr (:func:`headline`), then stderr's tail. With ``token``, only a status written under
    that attempt token counts: files another campaign or an earlier attempt left in the
    directory are never taken for this attempt's result.
    """
    workdir = Path(workdir)
    status, problem = _load_status(workdir)
    if status is not None and not status_token_matches(status, token):
        return JobResult(state=JobState.FAILED, retryable=True,
                         message=f"the status file in {workdir} belongs to another run (its attempt token is "
                                 "not this attempt's): this attempt left no status of its own")
    if canceled:
        return JobResult(state=JobState.CANCELED, message="canceled")
    where = _stderr_note(tail(workdir / STDERR_FILE))
    if problem is not None:
        return JobResult(state=JobState.FAILED, message=f"cannot tell how the job ended: {problem}{where}")
    if status is None or "exit_code" not in status and "signal" not in status:
        return JobResult(state=JobState.FAILED, retryable=True,
                         message=f"job ended without recording an exit status in {workdir}{where}")
    if status.get("error"):
        return JobResult(state=JobState.FAILED, exit_code=status.get("exit_code"),
                         message=f"could not start the script: {_cut(status['error'])}")
    if status.get("signal"):
        return JobResult(state=JobState.FAILED,
                         message=f"script killed by signal {_cut(status['signal'])}{where}")
    code = status["exit_code"]
    if code != 0:
        return JobResult(state=JobState.FAILED, exit_code=code,
                         message=f"script exited with code {code}{where}")
    result_path = workdir / RESULT_FILE
    output = read_returns(workdir) == "output"
    try:
        text = untrusted.read_text(result_path, RESULT_LIMIT)
    except FileNotFoundError:
        if output:  # a stage may leave its output in files only
            return JobResult(state=JobState.COMPLETED, exit_code=0)
        return JobResult(state=JobState.FAILED, exit_code=0,
                         message=f"script exited 0 but wrote no result to $AID2E_RESULT_FILE ({result_path})")
    except untrusted.UntrustedFileError as exc:
        return JobResult(state=JobState.FAILED, exit_code=0, message=f"bad result in {workdir}: {exc}")
    try:
        value = untrusted.parse_json(text)
    except ValueError as exc:
        return JobResult(state=JobState.FAILED, exit_code=0,
                         message=f"result file {result_path} is not valid JSON: {exc}")
    infeasible = infeasible_reason(value)
    if infeasible is not None:
        return JobResult(state=JobState.COMPLETED, exit_code=0, infeasible=infeasible[:TAIL_CHARS])
    if output:
        try:
            return JobResult(state=JobState.COMPLETED, exit_code=0, output=parse_output(value))
        except ValueError as exc:
            return JobResult(state=JobState.FAILED, exit_code=0, message=f"bad output in {result_path}: {exc}")
    try:
        metrics = parse_metrics(value)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "it is nested too deeply"
        return JobResult(state=JobState.FAILED, exit_code=0, message=f"bad result in {result_path}: {reason}")
    return JobResult(state=JobState.COMPLETED, metrics=metrics, exit_code=0)
