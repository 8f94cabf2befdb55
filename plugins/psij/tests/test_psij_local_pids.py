"""A local executor's job that an earlier controller started is followed by its pid and start
time: while it runs it is running, and a pid that now belongs to another process is not the job."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from aid2e.procs import pid_alive, start_time
from aid2e.types import JobHandle, JobState
from aid2e_psij import PsijRunner

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="start times come from /proc")


@pytest.fixture
def bystander():
    """A process in a session of its own (its pid is its process group), killed at the end."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _handle(pid: int, workdir, started: int | None) -> JobHandle:
    extra = {"kind": "script", "executor": "local", "psij_id": "x"}
    if started is not None:
        extra["start_time"] = started
    return JobHandle(backend="psij", native_id=str(pid), workdir=str(workdir), submitted_at=time.time(), extra=extra)


def _runner(tmp_path, **config) -> PsijRunner:
    return PsijRunner(executor="local", config={"work_directory": str(tmp_path / "psij"), **config})


def test_a_running_job_of_an_earlier_controller_is_running(tmp_path, bystander):
    """It was taken for a job gone from the queue, and failed after status_grace while it ran."""
    (tmp_path / "trial").mkdir()
    handle = _handle(bystander.pid, tmp_path / "trial", start_time(bystander.pid))
    runner = _runner(tmp_path, status_grace=0)
    assert runner.poll([handle]) == {handle.native_id: JobState.ACTIVE}


def test_a_reused_pid_is_not_the_job(tmp_path, bystander):
    """The job's process ended and its pid now belongs to another process (started later):
    the job is not running, and canceling it never signals that process."""
    (tmp_path / "trial").mkdir()
    recorded = start_time(bystander.pid) - 1  # the job's process started before the bystander
    handle = _handle(bystander.pid, tmp_path / "trial", recorded)
    assert not pid_alive(bystander.pid, recorded) and pid_alive(bystander.pid, recorded + 1)
    runner = _runner(tmp_path, status_grace=0)
    assert runner.poll([handle]) == {handle.native_id: JobState.FAILED}
    _runner(tmp_path).cancel(handle)  # within status_grace: the job may still be ending
    bystander.send_signal(signal.SIGKILL)
    # a fatal signal decides the exit status when it is sent: SIGTERM if cancel had signalled it
    assert bystander.wait(timeout=10) == -signal.SIGKILL
