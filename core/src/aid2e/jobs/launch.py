"""Run one prepared script job and record how it ended (``python -m aid2e.jobs.launch WORKDIR``).

Stdlib only, so it starts fast and runs wherever the job runs (a batch node too). It reads
``aid2e_command.json``, runs the argv with the trial directory as working directory (no shell),
sends stdout/stderr to files, forwards SIGTERM/SIGINT/SIGHUP to the child (then runs the job's
``on_cancel`` argv, if any) and writes
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

COMMAND_FILE = "aid2e_command.json"
STATUS_FILE = "aid2e_status.json"
#: Where batch systems put the job's id in its environment (Slurm, PBS/Torque, LSF, Cobalt, Flux).
BATCH_JOB_ID_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "COBALT_JOBID", "FLUX_JOB_ID")
#: Seconds the on-cancel command may take (backends send SIGKILL a few seconds after SIGTERM).
CANCEL_TIMEOUT = 10


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
    with open(workdir / "stdout.txt", "ab") as out, open(workdir / "stderr.txt", "ab") as err:
        try:
            child = subprocess.Popen(command["argv"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err)
        except OSError as exc:
            status.update(exit_code=127, error=f"{command['argv'][0]}: {exc.strerror or exc}",
                          ended_at=time.time())
            write_json(workdir / STATUS_FILE, status)
            return 127
        status["child_pid"] = child.pid
        write_json(workdir / STATUS_FILE, status)

        on_cancel = command.get("on_cancel") or []

        def forward(signum: int, _frame: object) -> None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass
            if on_cancel:  # e.g. remove a container its engine would keep running
                try:
                    subprocess.run(on_cancel, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=err,
                                   stderr=err, timeout=CANCEL_TIMEOUT)
                except (OSError, subprocess.SubprocessError) as exc:
                    err.write(f"aid2e: on-cancel command failed: {exc}\n".encode())

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, forward)
        code = child.wait()
    if code < 0:
        status.update(signal=signal.Signals(-code).name, ended_at=time.time())
        write_json(workdir / STATUS_FILE, status)
        return 128 - code
    status.update(exit_code=code, ended_at=time.time())
    write_json(workdir / STATUS_FILE, status)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
