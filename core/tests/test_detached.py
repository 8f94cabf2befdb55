"""aid2e.jobs.detached: script jobs as detached local processes, followed by pid and trial directory.

What the conformance suite does not reach through the joblib backend: the prefix command (its
process is the launcher's), a missing one, a launcher that dies without recording how the job
ended, and everything read from a handle alone in another process (a restarted controller)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

from aid2e import serialize
from aid2e.errors import SubmitError
from aid2e.jobs import detached
from aid2e.jobs.script import read_status, script_job
from aid2e.types import JobHandle, JobRequest, JobState, Measurement

HEADER = "import json, os, sys, time\nparams = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"


def _request(tmp_path: Path, body: str, index: int = 0, token: str = "") -> JobRequest:
    path = tmp_path / f"job_{index}.py"
    path.write_text(HEADER + body)
    return JobRequest(experiment="detached", trial_index=index, parameters={"x": 1.5}, job=script_job(path),
                      workdir=str(tmp_path / f"trial_{index}"), token=token)


def _until(condition, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.05)


def _final(handle: JobHandle, timeout: float = 30.0) -> JobState:
    _until(lambda: detached.state(handle).is_final, timeout, f"job {handle.native_id}'s end")
    return detached.state(handle)


WRITE_NICENESS = "json.dump({'niceness': os.nice(0), 'x': params['x']}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n"


@pytest.mark.timeout(60)
def test_a_prefix_runs_the_launcher_in_its_own_process(tmp_path: Path) -> None:
    """``nice -n 5`` execs the launcher: the job runs 5 steps nicer, and the handle's pid is the
    launcher's own (the one its status records), so following and canceling reach the job."""
    ours = os.nice(0)
    handle = detached.launch(_request(tmp_path, WRITE_NICENESS), "test", prefix=["nice", "-n", "5"])
    assert _final(handle) is JobState.COMPLETED, detached.result(handle).message
    assert detached.result(handle).metrics == {"niceness": Measurement(mean=min(ours + 5, 19)),
                                               "x": Measurement(mean=1.5)}
    assert read_status(handle.workdir)["pid"] == int(handle.native_id) == handle.extra["pid"]
    assert handle.backend == "test" and handle.extra["kind"] == "script"


PREFIXES = {
    "taskset": (["taskset", "-c", "0"], "sorted(os.sched_getaffinity(0))", [0]),
    "ionice": (["ionice", "-c", "3"], "subprocess.run(['ionice'], capture_output=True, text=True).stdout.strip()",
               "idle"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(PREFIXES))
def test_other_prefixes_the_docs_name_apply_to_the_job(tmp_path: Path, name: str) -> None:
    prefix, expression, expected = PREFIXES[name]
    if shutil.which(prefix[0]) is None:
        pytest.skip(f"{prefix[0]} is not installed")
    body = (f"import subprocess\njson.dump({expression}, open('seen.json', 'w'))\n"
            "json.dump({'ok': 1}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    handle = detached.launch(_request(tmp_path, body), "test", prefix=prefix)
    assert _final(handle) is JobState.COMPLETED, detached.result(handle).message
    assert json.loads((Path(handle.workdir) / "seen.json").read_text()) == expected
    assert read_status(handle.workdir)["pid"] == int(handle.native_id)


def test_a_missing_prefix_command_is_a_submit_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="no-such-wrapper"):
        detached.launch(_request(tmp_path, "pass\n"), "test", prefix=["no-such-wrapper", "-x"])


@pytest.mark.timeout(60)
def test_on_end_is_called_when_the_launcher_exits(tmp_path: Path) -> None:
    ended = threading.Event()
    handle = detached.launch(_request(tmp_path, "time.sleep(0.3)\nsys.exit(4)\n"), "test", on_end=ended.set)
    assert ended.wait(30), "on_end was not called"
    assert not os.path.exists(f"/proc/{handle.native_id}"), "the launcher was not reaped"
    result = detached.result(handle)
    assert (detached.state(handle), result.state, result.exit_code) == (JobState.FAILED, JobState.FAILED, 4)


@pytest.mark.timeout(60)
def test_a_launcher_killed_before_it_recorded_the_end_says_so(tmp_path: Path) -> None:
    """SIGKILL to the launcher alone: no exit status is recorded; the result is a retryable
    failure whose message says how the launcher ended (written into its log, which any
    controller reads)."""
    handle = detached.launch(_request(tmp_path, "time.sleep(60)\n"), "test")
    workdir = Path(handle.workdir)
    _until(lambda: read_status(workdir) is not None, what="the launcher's status")
    child = read_status(workdir)["child_pid"]
    os.kill(int(handle.native_id), signal.SIGKILL)
    try:
        assert _final(handle) is JobState.FAILED
        result = detached.result(handle)
        assert result.retryable, result.message
        assert "the job launcher was killed by signal 9" in result.message
        assert "\n" not in result.message
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_a_prefix_that_refuses_its_arguments_fails_the_job_with_its_words(tmp_path: Path) -> None:
    """The prefix starts (so submit succeeds) but never runs the launcher: the trial fails,
    retryable, with what the prefix said and how it exited, on one line."""
    handle = detached.launch(_request(tmp_path, "pass\n"), "test", prefix=["nice", "-n", "ten"])
    assert _final(handle) is JobState.FAILED
    result = detached.result(handle)
    assert result.retryable and "\n" not in result.message
    assert "launcher log: nice: invalid adjustment" in result.message
    assert result.message.endswith("; aid2e: the job launcher exited with code 125"), result.message


FOLLOW = """
import json, sys, time
from aid2e import serialize
from aid2e.jobs import detached
from aid2e.types import JobHandle
handle = serialize.from_json(json.loads(sys.argv[1]), JobHandle)
what = sys.argv[2]
if what == "cancel":
    print(detached.cancel(handle))
deadline = time.monotonic() + 30
while not detached.state(handle).is_final and time.monotonic() < deadline:
    time.sleep(0.05)
result = detached.result(handle)
print(detached.state(handle).value, result.state.value, json.dumps({k: m.mean for k, m in result.metrics.items()}))
"""


def _follow(handle: JobHandle, what: str) -> list[str]:
    """Follow (or cancel) ``handle`` from a new process, as a restarted controller does."""
    text = json.dumps(serialize.to_json(handle))
    done = subprocess.run([sys.executable, "-c", FOLLOW, text, what], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.timeout(90)
def test_another_process_follows_and_cancels_by_the_handle_alone(tmp_path: Path) -> None:
    quick = detached.launch(_request(tmp_path, WRITE_NICENESS.replace("os.nice(0)", "2.5"), index=0), "test")
    assert _follow(quick, "follow") == ['COMPLETED COMPLETED {"niceness": 2.5, "x": 1.5}']
    assert _follow(quick, "cancel") == ["False", 'COMPLETED COMPLETED {"niceness": 2.5, "x": 1.5}']
    assert detached.state(quick) is JobState.COMPLETED, "canceling an ended job changed it"

    slow = detached.launch(_request(tmp_path, "time.sleep(60)\n", index=1), "test")
    _until(lambda: read_status(slow.workdir) is not None, what="the launcher's status")
    assert detached.state(slow) is JobState.ACTIVE
    assert _follow(slow, "cancel") == ["True", "CANCELED CANCELED {}"]
    assert detached.state(slow) is JobState.CANCELED
    _until(lambda: not detached.running(slow), timeout=15, what="the canceled launcher's exit")


def test_a_handle_that_names_no_process_polls_failed_without_raising(tmp_path: Path) -> None:
    bad = JobHandle(backend="test", native_id="not-a-pid", workdir=str(tmp_path / "nowhere"), submitted_at=0.0)
    assert detached.state(bad) is JobState.FAILED
    assert detached.result(bad).state is JobState.FAILED
    gone = JobHandle(backend="test", native_id="999999999", workdir=str(tmp_path / "nowhere"), submitted_at=0.0)
    assert detached.state(gone) is JobState.FAILED
    assert detached.cancel(gone) is False
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.timeout(60)
def test_adopt_finds_the_attempts_job_and_not_another_attempts(tmp_path: Path) -> None:
    request = _request(tmp_path, "time.sleep(0.5)\n" + WRITE_NICENESS, token="attempt-1")
    launched = detached.launch(request, "test")
    adopted = detached.adopt(request, "test")
    assert adopted is not None and adopted.native_id == launched.native_id
    assert _final(adopted) is JobState.COMPLETED
    assert detached.adopt(attrs.evolve(request, token="attempt-2"), "test", patience=0.2) is None
