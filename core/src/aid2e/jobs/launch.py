"""Run one prepared script job and record how it ended (``python -m aid2e.jobs.launch WORKDIR``).

Stdlib only, so it starts fast and runs wherever the job runs (a batch node too). It reads
``aid2e_command.json``, runs the argv with the trial directory as working directory (no shell)
in a process group of its own, sends stdout/stderr to files, forwards SIGTERM/SIGINT/SIGHUP to
that group (then runs the job's ``on_cancel`` argv, if any), SIGKILLs what is left of the group
:data:`KILL_GRACE` seconds later (the launcher does it, so it happens whether or not the
controller that canceled the job is still alive) and writes
``aid2e_status.json`` atomically: first ``{"pid", "started_at"}``, at the end also
``{"exit_code" | "signal", "ended_at"}``. Its own exit code mirrors the child's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aid2e.atomic import write_json
from aid2e.jobs.files import COMMAND_FILE, STATUS_FILE, STDERR_FILE, STDOUT_FILE

#: Where batch systems put the job's id in its environment (Slurm, PBS/Torque, LSF, Cobalt, Flux).
BATCH_JOB_ID_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "COBALT_JOBID", "FLUX_JOB_ID")
#: Seconds the on-cancel command may take (backends send SIGKILL a few seconds after SIGTERM).
CANCEL_TIMEOUT = 10
#: Seconds a job has to end after its first stop signal before it is SIGKILLed.
KILL_GRACE = 3.0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m aid2e.jobs.launch WORKDIR", file=sys.stderr)
        return 2
    workdir = Path(argv[1])
    command = json.loads((workdir / COMMAND_FILE).read_text())
    env = {**os.environ, **command.get("env", {})}
    status: dict = {"pid": os.getpid(), "started_at": time.time(), "token": command.get("token", "")}
    batch_job = next((os.environ[name] for name in BATCH_JOB_ID_VARIABLES if os.environ.get(name)), None)
    if batch_job is not None:  # lets a restarted controller find the job after the queue forgot it
        status["batch_job_id"] = batch_job
    on_cancel = command.get("on_cancel") or []
    job: list[subprocess.Popen] = []  # the child, once started
    stops: list[int] = []  # stop signals received
    armed: list[bool] = []  # the SIGKILL timer is set

    def stop(signum: int) -> None:
        """Pass a stop signal on to the job's group; the first one starts the grace period."""
        _signal_group(job[0], signum)
        if not armed:
            armed.append(True)
            signal.setitimer(signal.ITIMER_REAL, KILL_GRACE)
        if on_cancel:  # e.g. remove a container its engine would keep running
            try:
                subprocess.run(on_cancel, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=err,
                               stderr=err, timeout=CANCEL_TIMEOUT)
            except (OSError, subprocess.SubprocessError) as exc:
                err.write(f"aid2e: on-cancel command failed: {exc}\n".encode())

    def forward(signum: int, _frame: object) -> None:
        stops.append(signum)
        if job:  # else it is stopped as soon as it has started
            stop(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    signal.signal(signal.SIGALRM, lambda _signum, _frame: _signal_group(job[0], signal.SIGKILL))
    with open(workdir / STDOUT_FILE, "ab") as out, open(workdir / STDERR_FILE, "ab") as err:
        try:
            # its own session and group: signals reach the script's children too, the SIGKILL
            # spares this launcher (which records how the job ended), no terminal signals it
            child = subprocess.Popen(command["argv"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            status.update(exit_code=127, error=f"{command['argv'][0]}: {exc.strerror or exc}",
                          ended_at=time.time())
            write_json(workdir / STATUS_FILE, status)
            return 127
        job.append(child)
        if stops:  # stopped while it was starting
            stop(stops[0])
        status["child_pid"] = child.pid
        write_json(workdir / STATUS_FILE, status)
        code = child.wait()
        if stops:  # told to stop: nothing of the job outlives its main process
            signal.setitimer(signal.ITIMER_REAL, 0)
            _signal_group(child, signal.SIGKILL)
    if code < 0:
        status.update(signal=signal.Signals(-code).name, ended_at=time.time())
        write_json(workdir / STATUS_FILE, status)
        return 128 - code
    status.update(exit_code=code, ended_at=time.time())
    write_json(workdir / STATUS_FILE, status)
    return code


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the job's process group (the script and whatever it started there)."""
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):  # the group is empty: nothing left to stop
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
