"""The one pid check: a recorded process runs only if it is the same process (start time)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aid2e.procs import pid_alive, running_start, start_time

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="start times come from /proc")


def test_this_process_is_alive_only_with_its_own_start_time():
    started = start_time(os.getpid())
    assert started is not None
    assert pid_alive(os.getpid()) and pid_alive(os.getpid(), started) and pid_alive(str(os.getpid()), started)
    assert not pid_alive(os.getpid(), started + 1)


@pytest.mark.parametrize("pid", ["abc", "", None, 0, -1, 2 ** 40])
def test_what_is_not_a_pid_is_not_alive(pid):
    assert not pid_alive(pid)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
    try:
        assert not pid_alive(child.pid)
        assert start_time(child.pid) is not None and running_start(child.pid) is None  # nothing to record
    finally:
        child.wait()
    assert running_start(os.getpid()) == start_time(os.getpid())
