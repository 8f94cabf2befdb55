"""The joblib backend's own behaviour: configuration, capacity, cheap import, parallelism."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aid2e.errors import ConfigError
from aid2e.jobs.function import function_job
from aid2e.jobs.script import script_job
from aid2e.testing.conformance import (
    objective_crash_worker,
    objective_ok,
    objective_sleep,
    objective_worker_pid,
    still_running,
)
from aid2e.types import FunctionJob, JobHandle, JobRequest, JobState
from aid2e_joblib import JobLibConfig, JobLibRunner


def _request(tmp_path: Path, index: int, job, parameters) -> JobRequest:
    return JobRequest(experiment="joblib-test", trial_index=index, parameters=parameters, job=job,
                      workdir=str(tmp_path / f"trial_{index}"))


def _wait_all(runner: JobLibRunner, handles: list[JobHandle], timeout: float = 60.0) -> dict[str, JobState]:
    deadline = time.monotonic() + timeout
    while True:
        states = runner.poll(handles)
        pending = [h for h in handles if not states[h.native_id].is_final]
        if not pending:
            return states
        assert time.monotonic() < deadline, f"jobs still running: {states}"
        runner.wait(pending, deadline - time.monotonic())


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize("n_jobs", [0, 1.5, "4", None, True])
def test_bad_n_jobs_is_a_config_error(n_jobs) -> None:
    with pytest.raises(ConfigError, match="n_jobs") as info:
        JobLibRunner(n_jobs=n_jobs)
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the old keyword
def test_bad_backend_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        JobLibRunner(backend="dask")
    message = str(info.value)
    assert "dask" in message and "\n" not in message
    for valid in ("loky", "threading", "multiprocessing"):
        assert valid in message


def test_unknown_config_key_names_it_and_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        JobLibRunner(config={"tmp_dir": "/tmp", "temp_dir": "/tmp"})
    message = str(info.value)
    assert "temp_dir" in message and "tmp_dir" in message and "container_engine" in message
    assert "\n" not in message


def test_config_is_structured() -> None:
    runner = JobLibRunner(n_jobs=2, config={"tmp_dir": "/scratch", "container_engine": "podman"})
    assert runner.config == JobLibConfig(tmp_dir="/scratch", container_engine="podman")
    assert JobLibRunner(n_jobs=2).config == JobLibConfig()
    with pytest.raises(ConfigError, match="tmp_dir"):
        JobLibRunner(config={"tmp_dir": 3})


def test_capacity_resolution() -> None:
    cpus = os.cpu_count() or 1
    assert JobLibRunner(n_jobs=3).capacity == 3
    assert JobLibRunner(n_jobs=-1).capacity == cpus
    assert JobLibRunner().capacity == cpus
    assert JobLibRunner(n_jobs=-2).capacity == max(cpus - 1, 1)
    assert JobLibRunner(n_jobs=-1000).capacity == 1


def test_import_is_cheap() -> None:
    code = (
        "import sys, aid2e_joblib\n"
        "heavy = sorted(m for m in ('joblib', 'ax', 'torch') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import aid2e_joblib imported {out.stdout.strip()}"


def test_registered_as_a_plugin() -> None:
    import aid2e_joblib

    (info,) = list(aid2e_joblib.aid2e_backends())
    assert info.name == "joblib" and info.factory is JobLibRunner
    assert info.kinds == frozenset({"function", "script"})


# ------------------------------------------------------------------ behaviour
@pytest.mark.timeout(120)
def test_function_jobs_run_in_parallel(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=8, pool="loky")
    runner.start()
    try:
        job = FunctionJob(function=objective_sleep, call_style="kwargs")
        warm = [runner.submit(_request(tmp_path, i, job, {"seconds": 0.05})) for i in range(8)]
        _wait_all(runner, warm)
        start = time.monotonic()
        handles = [runner.submit(_request(tmp_path, i, job, {"seconds": 0.5})) for i in range(8)]
        states = _wait_all(runner, handles)
        elapsed = time.monotonic() - start
        assert all(s is JobState.COMPLETED for s in states.values()), states
        assert elapsed < 3.0, f"8 jobs of 0.5 s on 8 workers took {elapsed:.2f}s"
    finally:
        runner.close()


@pytest.mark.timeout(120)
def test_worker_crash_is_a_failed_result_and_the_pool_recovers(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=2, pool="loky")
    runner.start()
    try:
        crash = runner.submit(_request(tmp_path, 0, FunctionJob(function=objective_crash_worker), {"x": 1.0}))
        assert _wait_all(runner, [crash])[crash.native_id] is JobState.FAILED
        result = runner.result(crash)
        assert result.state is JobState.FAILED and result.message
        job = function_job(objective_ok, ["x", "y"])
        ok = runner.submit(_request(tmp_path, 1, job, {"x": 1.0, "y": 1.0}))
        assert _wait_all(runner, [ok])[ok.native_id] is JobState.COMPLETED, runner.result(ok).message
    finally:
        runner.close()


@pytest.mark.timeout(60)
def test_unpicklable_function_is_a_failed_result(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=1, pool="multiprocessing")
    try:
        lock_holder = _Unpicklable()
        handle = runner.submit(_request(tmp_path, 0, FunctionJob(function=lock_holder), {"x": 1.0}))
        assert _wait_all(runner, [handle])[handle.native_id] is JobState.FAILED
        assert runner.result(handle).message
    finally:
        runner.close()


class _Unpicklable:
    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    def __call__(self, **_kw):
        return {"objective": 1.0}


def test_function_handle_of_an_earlier_controller_is_lost(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=1, pool="threading")
    handle = JobHandle(backend="joblib", native_id="fn-0123", workdir=str(tmp_path),
                       submitted_at=0.0, extra={"kind": "function"})
    assert runner.poll([handle]) == {"fn-0123": JobState.FAILED}
    result = runner.result(handle)
    assert result.state is JobState.FAILED and "lost with its controller" in result.message
    runner.close()


def test_bad_and_stale_handles_do_not_break_poll(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=1, pool="threading")
    bad = JobHandle(backend="joblib", native_id="not-a-pid", workdir=str(tmp_path / "a"),
                    submitted_at=0.0, extra={"kind": "script"})
    # our own pid with a wrong start time: a reused pid, not the job
    stale = JobHandle(backend="joblib", native_id=str(os.getpid()), workdir=str(tmp_path / "b"),
                      submitted_at=0.0, extra={"kind": "script", "pid": os.getpid(), "start_time": 1})
    states = runner.poll([bad, stale])
    assert states == {"not-a-pid": JobState.FAILED, str(os.getpid()): JobState.FAILED}
    assert runner.result(bad).state is JobState.FAILED
    assert "exit status" in runner.result(stale).message
    runner.cancel(stale)  # must not signal this process
    runner.close()


#: A job that ignores SIGTERM and writes its pid to pid.txt.
STUBBORN = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open('pid.txt', 'w').write(str(os.getpid()))\n"
    "time.sleep(60)\n"
)


@pytest.mark.timeout(60)
def test_cancel_escalates_to_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    runner = JobLibRunner(n_jobs=1, pool="threading")
    request = _request(tmp_path, 0, script_job(script), {"x": 1.0})
    handle = runner.submit(request)
    pid_file = Path(request.workdir) / "pid.txt"
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    before = time.monotonic()
    runner.cancel(handle)
    assert time.monotonic() - before < 1.0, "cancel() blocked the caller"
    assert runner.poll([handle])[handle.native_id] is JobState.CANCELED
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except (ProcessLookupError, FileNotFoundError):
            break
        assert time.monotonic() < deadline, "SIGTERM-ignoring job survived cancel"
        time.sleep(0.1)
    runner.close()


CANCEL_THEN_EXIT = """
import sys, time
from pathlib import Path
from aid2e.jobs.script import script_job
from aid2e.types import JobRequest
from aid2e_joblib import JobLibRunner

script, workdir = Path(sys.argv[1]), Path(sys.argv[2])
runner = JobLibRunner(n_jobs=1, pool="threading")
handle = runner.submit(JobRequest(experiment="exit", trial_index=0, parameters={"x": 1.0},
                                  job=script_job(script), workdir=str(workdir)))
deadline = time.monotonic() + 30
while not (workdir / "pid.txt").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
runner.cancel(handle)
print((workdir / "pid.txt").read_text(), flush=True)
"""


@pytest.mark.timeout(60)
def test_cancel_escalates_to_sigkill_even_when_the_controller_exits_right_after(tmp_path: Path) -> None:
    """The job's launcher escalates, not a timer in the controller that dies with it."""
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    controller = subprocess.run([sys.executable, "-c", CANCEL_THEN_EXIT, str(script), str(tmp_path / "trial_0")],
                                capture_output=True, text=True, timeout=60)
    assert controller.returncode == 0, controller.stderr
    pid = int(controller.stdout.split()[0])
    survivors = still_running([pid], 15)  # the grace period (3 s) and a margin for a busy machine
    for survivor in survivors:
        os.kill(survivor, 9)
    assert not survivors, "the SIGTERM-ignoring job survived its controller's cancel"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_canceling_a_running_function_kills_its_worker_and_the_next_job_gets_a_new_one(tmp_path, backend):
    runner = JobLibRunner(n_jobs=1, pool=backend)
    try:
        first = runner.submit(_request(tmp_path, 0, FunctionJob(function=objective_worker_pid), {"x": 1.0, "y": 0.0}))
        _wait_all(runner, [first])
        worker = int(runner.result(first).metrics["objective"].mean)
        hung = runner.submit(_request(tmp_path, 1, FunctionJob(function=objective_sleep), {"seconds": 3600}))
        queued = runner.submit(_request(tmp_path, 2, FunctionJob(function=objective_worker_pid), {"x": 1.0, "y": 0.0}))
        states = runner.poll([hung, queued])
        assert (states[hung.native_id], states[queued.native_id]) == (JobState.ACTIVE, JobState.QUEUED)
        assert runner.cancel_stops(hung)
        runner.cancel(hung)
        assert runner.poll([hung])[hung.native_id] is JobState.CANCELED
        assert not still_running([worker], 10), "the canceled job's worker still runs"
        assert _wait_all(runner, [queued])[queued.native_id] is JobState.COMPLETED, runner.result(queued).message
        assert int(runner.result(queued).metrics["objective"].mean) != worker
    finally:
        runner.close()


@pytest.mark.timeout(60)
def test_a_canceled_function_thread_is_given_up_honestly_and_frees_its_slot(tmp_path: Path) -> None:
    runner = JobLibRunner(n_jobs=1, pool="threading")
    try:
        hung = runner.submit(_request(tmp_path, 0, FunctionJob(function=objective_sleep), {"seconds": 2}))
        queued = runner.submit(_request(tmp_path, 1, function_job(objective_ok, ["x", "y"]), {"x": 1.0, "y": 1.0}))
        assert not runner.cancel_stops(hung)
        runner.cancel(hung)
        assert "cannot be stopped" in runner.result(hung).message
        assert _wait_all(runner, [queued], timeout=1.5)[queued.native_id] is JobState.COMPLETED
    finally:
        runner.close()


@pytest.mark.timeout(60)
def test_children_are_reaped(tmp_path: Path) -> None:
    script = tmp_path / "quick.py"
    script.write_text("import json, os\njson.dump({'o': 1}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    runner = JobLibRunner(n_jobs=2, pool="threading")
    handles = [runner.submit(_request(tmp_path, i, script_job(script), {"x": 1.0})) for i in range(3)]
    _wait_all(runner, handles)
    deadline = time.monotonic() + 5
    for handle in handles:
        while os.path.exists(f"/proc/{handle.native_id}"):  # a zombie keeps its /proc entry
            assert time.monotonic() < deadline, f"pid {handle.native_id} was not reaped"
            time.sleep(0.05)
    runner.close()
    runner.close()  # idempotent


def test_submit_of_an_unsupported_kind_is_a_submit_error(tmp_path: Path) -> None:
    from aid2e.errors import SubmitError

    class NotebookJob:
        kind = "notebook"

    runner = JobLibRunner(n_jobs=1, pool="threading")
    with pytest.raises(SubmitError, match="notebook"):
        runner.submit(_request(tmp_path, 0, NotebookJob(), {}))


def report_tmpdir(x: float, y: float) -> dict:
    import tempfile

    return {"objective": float(len(tempfile.gettempdir())), "x": x}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_tmp_dir_is_the_jobs_temporary_directory(tmp_path, backend):
    """config tmp_dir becomes TMPDIR of script jobs and of process workers."""
    from aid2e.jobs.script import script_job
    from aid2e.types import JobRequest

    tmp_dir = tmp_path / "scratch" / "tmp"
    script = tmp_path / "job.py"
    script.write_text(
        "import json, os, tempfile\n"
        "json.dump({'ok': 1.0, 'len': len(tempfile.gettempdir())}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n"
        "open('tmpdir.txt', 'w').write(tempfile.gettempdir())\n"
    )
    runner = JobLibRunner(n_jobs=1, pool=backend, config={"tmp_dir": str(tmp_dir)})
    try:
        assert tmp_dir.is_dir() and runner.config.tmp_dir == str(tmp_dir)
        request = JobRequest(experiment="t", trial_index=0, parameters={"x": 1.0, "y": 2.0},
                             job=script_job(script), workdir=str(tmp_path / "trial_0"))
        handle = runner.submit(request)
        deadline = time.time() + 30
        while not runner.poll([handle])[handle.native_id].is_final and time.time() < deadline:
            runner.wait([handle], 1.0)
        assert runner.result(handle).state.value == "COMPLETED"
        assert (tmp_path / "trial_0" / "tmpdir.txt").read_text() == str(tmp_dir)

        from aid2e.jobs.function import function_job

        fn_request = JobRequest(experiment="t", trial_index=1, parameters={"x": 1.0, "y": 2.0},
                                job=function_job(report_tmpdir, ["x", "y"]), workdir=str(tmp_path / "trial_1"))
        fn_handle = runner.submit(fn_request)
        while not runner.poll([fn_handle])[fn_handle.native_id].is_final and time.time() < deadline:
            runner.wait([fn_handle], 1.0)
        result = runner.result(fn_handle)
        assert result.metrics["objective"].mean == len(str(tmp_dir)), result
    finally:
        runner.close()


def test_tmp_dir_that_cannot_be_created_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="joblib config 'tmp_dir': cannot create"):
        JobLibRunner(config={"tmp_dir": str(blocker / "tmp")})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("left", ["fifo", "symlink"])
def test_launcher_log_left_by_an_earlier_attempt_is_not_opened(tmp_path: Path, left: str) -> None:
    """The trial directory is the trial's: a FIFO at the launcher log blocked the submit forever,
    a symlink made the controller append to the file it points to."""
    host_file = tmp_path / "host.log"
    host_file.write_text("keep me\n")
    workdir = tmp_path / "trial_0"
    workdir.mkdir()
    log = workdir / "aid2e_launcher.log"
    if left == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to(host_file)
    script = tmp_path / "ok.py"
    script.write_text("import os, json\njson.dump({'objective': 1.0}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    runner = JobLibRunner(n_jobs=1)
    try:
        handle = runner.submit(JobRequest(experiment="e", trial_index=0, parameters={}, job=script_job(script),
                                          workdir=str(workdir)))
        assert runner.wait([handle], 30)
        assert runner.result(handle).state is JobState.COMPLETED
    finally:
        runner.close()
    assert host_file.read_text() == "keep me\n"
    assert not log.is_symlink() and log.is_file()


# ------------------------------------------------------------------ pool (was: backend)
def test_pool_names_the_kind_of_workers_and_backend_is_its_deprecated_alias():
    """"backend" is where jobs run (this runner is the joblib backend); the worker type is ``pool``."""
    runner = JobLibRunner(n_jobs=1, pool="threading")
    assert runner.pool == "threading" and runner.to_config()["pool"] == "threading"
    assert "backend" not in runner.to_config()
    with pytest.warns(DeprecationWarning, match="use pool="):
        old = JobLibRunner(n_jobs=1, backend="threading")
    assert old.pool == old.backend == "threading"
    with pytest.warns(DeprecationWarning):  # the kwargs a saved state of an older aid2e holds
        saved = JobLibRunner(**{"n_jobs": 1, "backend": "multiprocessing", "config": {}})
    assert saved.pool == "multiprocessing"
    with pytest.raises(ConfigError, match="unknown joblib pool 'dask'"):
        JobLibRunner(pool="dask")
    with pytest.raises(ConfigError, match="give only pool"):
        JobLibRunner(pool="loky", backend="threading")


def test_status_names_its_workers_and_the_machines_cores():
    status = JobLibRunner(n_jobs=3, pool="threading").status()
    assert status == f"ready, 3 worker(s) (threading) on {os.cpu_count()} cores"
