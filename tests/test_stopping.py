"""Stopping is real: a hung function trial does not keep the controller alive, and Ctrl-C at a
real terminal reaches the controller only (it decides: the first awaits the running function
trials, the second cancels them and their workers are gone).

The controller is a child process (tests/function_campaign.py); the terminal is a real
pseudo-terminal, and Ctrl-C is the ``\\x03`` byte typed on its master side, so the kernel
signals the terminal's foreground process group exactly as it does for a person.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aid2e.testing.conformance import process_gone, still_running

CAMPAIGN = str(Path(__file__).with_name("function_campaign.py"))


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def _kill(pids) -> None:
    """Clean up after a failed test: no worker of it may be left behind."""
    for pid in pids:
        if not process_gone(pid):
            os.kill(pid, signal.SIGKILL)


def _started_pids(where: Path) -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in where.glob("started_*") if p.read_text()}


@pytest.mark.timeout(180)
def test_the_controller_exits_after_run_optimization_although_a_function_trial_hung(tmp_path):
    child = subprocess.Popen([sys.executable, CAMPAIGN, str(tmp_path), "hang"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        pytest.fail(f"the controller did not exit after run_optimization returned:\n{out[-2000:]}")
    finally:
        survivors = still_running(_started_pids(tmp_path).values(), 10)
        _kill(survivors)
    assert "returned" in out, out[-2000:]
    assert child.returncode == 0, out[-2000:]
    assert len(_started_pids(tmp_path)) == 1
    assert not survivors, "the hung trial's worker outlived its controller"


class _Terminal:
    """A child process on a pseudo-terminal; its output is collected in the background."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal is its controlling terminal
            os.execv(argv[0], argv)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self.output += data

    def type_ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._reader.join(5)
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                pytest.fail(f"the controller did not end:\n{self.text[-2000:]}")
            time.sleep(0.05)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


@pytest.mark.timeout(180)
def test_ctrl_c_at_a_terminal_awaits_the_running_function_trials_which_complete(tmp_path):
    terminal = _Terminal([sys.executable, CAMPAIGN, str(tmp_path), "sleep", "4"])
    try:
        _wait_for(lambda: len(_started_pids(tmp_path)) == 2, 120, "two trials to start")
        terminal.type_ctrl_c()
        code = terminal.wait(60)
    finally:
        _kill(_started_pids(tmp_path).values())
    assert code == 130, terminal.text[-2000:]
    assert "2 trial(s) that could not be left were waited for" in terminal.text, terminal.text[-2000:]
    assert "KeyboardInterrupt" not in terminal.text, terminal.text[-2000:]
    started = sorted(name.removeprefix("started_") for name in _started_pids(tmp_path))
    assert sorted(p.name.removeprefix("done_") for p in tmp_path.glob("done_*")) == started  # both completed


@pytest.mark.timeout(180)
def test_second_ctrl_c_at_a_terminal_cancels_the_function_trials_and_their_workers_are_gone(tmp_path):
    terminal = _Terminal([sys.executable, CAMPAIGN, str(tmp_path), "sleep", "3600"])
    try:
        _wait_for(lambda: len(_started_pids(tmp_path)) == 2, 120, "two trials to start")
        workers = list(_started_pids(tmp_path).values())
        terminal.type_ctrl_c()
        _wait_for(lambda: b"Press Ctrl-C again" in terminal.output, 30, "the first Ctrl-C to be handled")
        assert not any(process_gone(pid) for pid in workers), "the first Ctrl-C reached the workers"
        terminal.type_ctrl_c()
        code = terminal.wait(60)
        assert not still_running(workers, 10), "the canceled trials' workers still run"
    finally:
        _kill(_started_pids(tmp_path).values())
    assert code == 130, terminal.text[-2000:]
    assert "2 running trial(s) canceled" in terminal.text, terminal.text[-2000:]
    assert not list(tmp_path.glob("done_*"))
