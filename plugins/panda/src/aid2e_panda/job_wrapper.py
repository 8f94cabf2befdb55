"""The job wrapper: shipped in every trial's sandbox as ``aid2e_panda_wrapper.py`` and run on the
grid node (after ``init_env`` is sourced) as ``python3 aid2e_panda_wrapper.py``.

Python 3 standard library only (aid2e need not be installed on the node for script jobs). It
runs the trial's command from ``aid2e_panda_command.json`` with the job's directory as working
directory, argv only (never a shell), stdout/stderr to ``stdout.txt``/``stderr.txt``, and then
publishes how it ended as the job's **user metadata**: it writes ``userJobMetadata.json``, which
the pilot uploads with the job, and which the controller reads with panda-client's
``getUserJobMetadata(jediTaskID)``::

    {"aid2e": {"version": 1,
               "status": {"exit_code": 0, "started_at": ..., "ended_at": ...},  # or "signal", "error"
               "result": "<text of result.json, or null>",
               "stderr_tail": "<last 2000 characters of stderr>"}}

Its exit code mirrors the command's, so the job (and the task) fail when the command fails and
PanDA's ``transExitCode`` is the command's exit code.
"""

# The file names repeat aid2e.jobs.files (the node may not have aid2e); a test checks they agree.
import json
import os
import signal
import stat
import subprocess
import sys
import time

COMMAND_FILE = "aid2e_panda_command.json"
STATUS_FILE = "aid2e_status.json"
RESULT_FILE = "result.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
METADATA_FILE = "userJobMetadata.json"
#: Replaced by the job's directory in the command's argv and environment.
JOBDIR = "@@AID2E_JOBDIR@@"
TAIL = 2000
#: Results larger than this are not published (PanDA keeps metadata small).
MAX_RESULT = 64 * 1024
NOT_REGULAR = "result.json is a symlink or not a regular file: aid2e reads only regular files in the trial directory"


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(value, handle)
    os.replace(tmp, path)


def _open_regular(path):
    """A file the command left, opened as aid2e.jobs.untrusted does (this wrapper cannot import
    aid2e): no symlink followed, never blocking on a FIFO, a regular file only. Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(NOT_REGULAR)
    return os.fdopen(fd, "rb")


def _tail(path):
    try:
        with _open_regular(path) as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - TAIL))
            return handle.read(TAIL).decode(errors="replace").strip()
    except OSError:
        return ""


def _publish(here, status):
    result = None
    try:
        with _open_regular(os.path.join(here, RESULT_FILE)) as handle:
            raw = handle.read(MAX_RESULT + 1)
        if len(raw) > MAX_RESULT:
            status.setdefault("error_note", f"result.json larger than {MAX_RESULT} bytes was not published")
        else:
            result = raw.decode(errors="replace")
    except FileNotFoundError:
        pass
    except OSError:
        status.setdefault("error_note", NOT_REGULAR)
    metadata = {"aid2e": {"version": 1, "status": status, "result": result,
                          "stderr_tail": _tail(os.path.join(here, STDERR_FILE))}}
    _write_json(os.path.join(here, METADATA_FILE), metadata)


def main():
    here = os.getcwd()
    with open(os.path.join(here, COMMAND_FILE)) as handle:
        command = json.load(handle)
    argv = [a.replace(JOBDIR, here) for a in command["argv"]]
    env = dict(os.environ)
    env.update({k: v.replace(JOBDIR, here) for k, v in command.get("env", {}).items()})
    for stale in (STATUS_FILE, RESULT_FILE, METADATA_FILE):
        try:
            os.unlink(os.path.join(here, stale))
        except OSError:
            pass
    status = {"pid": os.getpid(), "started_at": time.time()}
    with open(os.path.join(here, STDOUT_FILE), "ab") as out, open(os.path.join(here, STDERR_FILE), "ab") as err:
        try:
            child = subprocess.Popen(argv, cwd=here, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            status.update(exit_code=127, error=f"{command['argv'][0]}: {exc.strerror or exc}",
                          ended_at=time.time())
            _write_json(os.path.join(here, STATUS_FILE), status)
            _publish(here, status)
            return 127
        status["child_pid"] = child.pid
        _write_json(os.path.join(here, STATUS_FILE), status)

        def forward(signum, _frame):
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, forward)
        code = child.wait()
    if code < 0:
        status.update(signal=signal.Signals(-code).name, ended_at=time.time())
        code = 128 - code
    else:
        status.update(exit_code=code, ended_at=time.time())
    _write_json(os.path.join(here, STATUS_FILE), status)
    _publish(here, status)
    return code


if __name__ == "__main__":
    sys.exit(main())
