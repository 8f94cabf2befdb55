"""Unit tests of the built-in job kinds: aid2e.jobs.script (with its launcher) and aid2e.jobs.function."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aid2e.errors import ConfigError
from aid2e.jobs import script
from aid2e.jobs.function import call_style_for, function_job, run_function_job
from aid2e.types import FunctionJob, JobRequest, JobState, Measurement, ScriptJob


# ------------------------------------------------------------------ script_job
def test_python_script_uses_this_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "objective.py"
    path.write_text("print(1)\n")
    job = script.script_job(path, args=("--fast", 3))
    assert job.argv == (sys.executable, str(path.resolve()), "--fast", "3")


def test_shell_script_uses_bash(tmp_path: Path) -> None:
    path = tmp_path / "objective.sh"
    path.write_text("echo 1\n")
    assert script.script_job(path).argv == ("bash", str(path.resolve()))


def test_other_executable_runs_directly(tmp_path: Path) -> None:
    path = tmp_path / "objective"
    path.write_text("#!/bin/sh\necho 1\n")
    path.chmod(0o755)
    assert script.script_job(path).argv == (str(path.resolve()),)


def test_non_executable_is_a_config_error_naming_chmod(tmp_path: Path) -> None:
    path = tmp_path / "objective.bin"
    path.write_text("data\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod"):
        script.script_job(path)


def test_missing_script_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "objective.py"
    with pytest.raises(ConfigError) as info:
        script.script_job(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_script(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        script.script_job(tmp_path)


# ------------------------------------------------------------------ read_result
def _status(workdir: Path, **fields) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / script.STATUS_FILE).write_text(json.dumps({"pid": 1, "started_at": 0.0, **fields}))


def test_read_result_completed(tmp_path: Path) -> None:
    _status(tmp_path, exit_code=0)
    value = {"a": 1.5, "b": {"mean": 2, "sem": 0.5}, "c": [3, 0.1]}
    (tmp_path / script.RESULT_FILE).write_text(json.dumps(value))
    result = script.read_result(tmp_path)
    assert result.state is JobState.COMPLETED and result.exit_code == 0
    assert result.metrics == {"a": Measurement(mean=1.5), "b": Measurement(mean=2.0, sem=0.5),
                              "c": Measurement(mean=3.0, sem=0.1)}


def test_read_result_without_status_fails(tmp_path: Path) -> None:
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and "exit status" in result.message


def test_read_result_nonzero_exit_has_code_and_stderr(tmp_path: Path) -> None:
    _status(tmp_path, exit_code=3)
    (tmp_path / script.STDERR_FILE).write_text("x" * 5000 + "Traceback: the-real-error\n")
    (tmp_path / script.RESULT_FILE).write_text('{"a": 1}')  # ignored: the script failed
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and result.exit_code == 3
    assert "code 3" in result.message and "the-real-error" in result.message
    assert len(result.message) < script.TAIL_CHARS + 200
    assert not result.metrics


def test_read_result_signal(tmp_path: Path) -> None:
    _status(tmp_path, signal="SIGKILL")
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and "SIGKILL" in result.message


def test_read_result_start_error(tmp_path: Path) -> None:
    _status(tmp_path, exit_code=127, error="/no/python: No such file or directory")
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and "/no/python" in result.message


def test_read_result_exit_zero_without_result_names_the_variable(tmp_path: Path) -> None:
    _status(tmp_path, exit_code=0)
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and "AID2E_RESULT_FILE" in result.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"a": 1', "not valid JSON"),
        ('{"a": NaN}', "finite"),
        ('{"a": Infinity}', "finite"),
        ("[1, 2]", "dict"),
        ("{}", "no metrics"),
        ('{"a": "high"}', "number"),
        ('{"a": true}', "number"),
        ('{"a": {"mean": 1, "stderr": 2}}', "stderr"),
    ],
)
def test_read_result_bad_results_fail(tmp_path: Path, text: str, needle: str) -> None:
    _status(tmp_path, exit_code=0)
    (tmp_path / script.RESULT_FILE).write_text(text)
    result = script.read_result(tmp_path)
    assert result.state is JobState.FAILED and not result.metrics
    assert needle in result.message


def test_read_result_canceled(tmp_path: Path) -> None:
    assert script.read_result(tmp_path, canceled=True).state is JobState.CANCELED


# ------------------------------------------------------------------ the launcher
def _prepare(tmp_path: Path, body: str, parameters: dict, index: int = 7) -> Path:
    path = tmp_path / "objective.py"
    path.write_text(body)
    request = JobRequest(experiment="unit", trial_index=index, parameters=parameters,
                         job=script.script_job(path), workdir=str(tmp_path / "trial"))
    return script.prepare_workdir(request)


def _launch(workdir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(script.launcher_argv(workdir), capture_output=True, text=True, timeout=timeout)


ENV_DUMP = """\
import json, os, sys
keys = ["AID2E_PARAMS_FILE", "JOB_PARAMS_FILE", "AID2E_RESULT_FILE", "AID2E_TRIAL_INDEX", "AID2E_EXPERIMENT"]
print("to-stdout")
print("to-stderr", file=sys.stderr)
with open(os.environ["AID2E_PARAMS_FILE"]) as f:
    params = json.load(f)
json.dump({"env": {k: os.environ.get(k) for k in keys}, "cwd": os.getcwd(), "params": params},
          open("seen.json", "w"))
json.dump({"objective": params["x"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


@pytest.mark.timeout(60)
def test_launcher_sets_environment_cwd_and_output_files(tmp_path: Path) -> None:
    parameters = {"x": 0.5, "s": "a b; $(echo no) 'q'", "n": 3, "flag": False}
    workdir = _prepare(tmp_path, ENV_DUMP, parameters)
    assert json.loads((workdir / script.PARAMS_FILE).read_text()) == parameters
    done = _launch(workdir)
    assert done.returncode == 0, done.stderr
    seen = json.loads((workdir / "seen.json").read_text())
    assert seen["env"] == {
        "AID2E_PARAMS_FILE": str(workdir / script.PARAMS_FILE),
        "JOB_PARAMS_FILE": str(workdir / script.PARAMS_FILE),
        "AID2E_RESULT_FILE": str(workdir / script.RESULT_FILE),
        "AID2E_TRIAL_INDEX": "7",
        "AID2E_EXPERIMENT": "unit",
    }
    assert Path(seen["cwd"]).resolve() == workdir.resolve()
    assert seen["params"] == parameters
    assert (workdir / script.STDOUT_FILE).read_text() == "to-stdout\n"
    assert (workdir / script.STDERR_FILE).read_text() == "to-stderr\n"
    status = script.read_status(workdir)
    assert status["exit_code"] == 0 and isinstance(status["pid"], int) and "ended_at" in status
    result = script.read_result(workdir)
    assert result.state is JobState.COMPLETED and result.metrics == {"objective": Measurement(mean=0.5)}


@pytest.mark.timeout(60)
def test_launcher_records_the_exit_code(tmp_path: Path) -> None:
    workdir = _prepare(tmp_path, "import sys\nprint('bad things', file=sys.stderr)\nsys.exit(5)\n", {"x": 1})
    done = _launch(workdir)
    assert done.returncode == 5
    status = script.read_status(workdir)
    assert status["exit_code"] == 5 and "signal" not in status
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and result.exit_code == 5 and "bad things" in result.message


@pytest.mark.timeout(60)
def test_launcher_records_a_signal_and_forwards_sigterm(tmp_path: Path) -> None:
    body = "import time\nopen('started', 'w').close()\ntime.sleep(60)\n"
    workdir = _prepare(tmp_path, body, {"x": 1})
    proc = subprocess.Popen(script.launcher_argv(workdir))
    try:
        deadline = time.monotonic() + 30
        while not (workdir / "started").exists():
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # to the launcher only: it must forward it
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status = script.read_status(workdir)
    assert status["signal"] == "SIGTERM"
    child = status["child_pid"]
    assert not os.path.exists(f"/proc/{child}") or _zombie(child)
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and "SIGTERM" in result.message


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.timeout(60)
def test_launcher_records_a_missing_program(tmp_path: Path) -> None:
    workdir = tmp_path / "trial"
    request = JobRequest(experiment="unit", trial_index=0, parameters={},
                         job=ScriptJob(argv=(str(tmp_path / "no-such-program"),)), workdir=str(workdir))
    script.prepare_workdir(request)
    assert _launch(workdir).returncode == 127
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and "no-such-program" in result.message


def test_prepare_workdir_clears_stale_files(tmp_path: Path) -> None:
    workdir = _prepare(tmp_path, "pass\n", {"x": 1})
    (workdir / script.RESULT_FILE).write_text('{"a": 1}')
    _status(workdir, exit_code=0)
    _prepare(tmp_path, "pass\n", {"x": 2})
    assert not (workdir / script.RESULT_FILE).exists()
    assert script.read_status(workdir) is None
    assert json.loads((workdir / script.PARAMS_FILE).read_text()) == {"x": 2}
    command = json.loads((workdir / script.COMMAND_FILE).read_text())
    assert command["argv"][0] == sys.executable


# ------------------------------------------------------------------ function kind
def _dict_style(parameterization):
    return {"o": parameterization["x"] + parameterization["y"]}


def _kwargs_style(x, y):
    return {"o": x * y}


def _var_kw(**kw):
    return {"o": sum(kw.values())}


def _single_param_named_like_a_parameter(x):
    return {"o": x}


def test_call_style_for() -> None:
    assert call_style_for(_dict_style, ["x", "y"]) == "dict"
    assert call_style_for(_kwargs_style, ["x", "y"]) == "kwargs"
    assert call_style_for(_var_kw, ["x", "y"]) == "kwargs"
    assert call_style_for(_single_param_named_like_a_parameter, ["x"]) == "kwargs"
    with pytest.raises(ConfigError, match="callable"):
        call_style_for(42, ["x"])


@pytest.mark.parametrize(("function", "expected"), [(_dict_style, 5.0), (_kwargs_style, 6.0), (_var_kw, 5.0)])
def test_run_function_job_success(function, expected) -> None:
    result = run_function_job(function_job(function, ["x", "y"]), {"x": 2.0, "y": 3.0})
    assert result.state is JobState.COMPLETED
    assert result.metrics == {"o": Measurement(mean=expected)}


def test_run_function_job_exception() -> None:
    def boom(x):
        raise RuntimeError(f"kaput {x}")

    result = run_function_job(FunctionJob(function=boom), {"x": 4})
    assert result.state is JobState.FAILED
    assert "RuntimeError" in result.message and "kaput 4" in result.message


@pytest.mark.parametrize("value", ["text", None, {}, {"o": math.nan}, {"o": "1.0x"}, {1: 2.0}, [1.0]])
def test_run_function_job_bad_return(value) -> None:
    result = run_function_job(FunctionJob(function=lambda **_: value), {"x": 1})
    assert result.state is JobState.FAILED and not result.metrics
    assert "bad objective result" in result.message


def test_launcher_runs_on_cancel_after_forwarding_the_signal(tmp_path):
    """A canceled job's on-cancel argv runs (no shell) once the signal reached the program."""
    import signal
    import time

    from aid2e.jobs.script import launcher_argv, prepare_workdir
    from aid2e.types import JobRequest, ScriptJob

    marker = tmp_path / "cleaned up"
    job = ScriptJob(argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                    on_cancel=[sys.executable, "-c", f"open({str(marker)!r}, 'w').write('yes')"])
    workdir = prepare_workdir(JobRequest(experiment="e", trial_index=0, parameters={}, job=job,
                                         workdir=str(tmp_path / "trial_0")))
    proc = subprocess.Popen(launcher_argv(workdir), start_new_session=True)
    deadline = time.time() + 20
    while not (workdir / "aid2e_status.json").exists():
        assert time.time() < deadline, "the launcher never wrote its status"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "yes"


def test_a_new_attempt_clears_an_earlier_attempts_cancel_marker(tmp_path: Path) -> None:
    """The cancel marker of an earlier attempt must not make a rerun look canceled, on every
    backend (joblib and psij each removed it themselves; a new backend would not have)."""
    from aid2e.jobs import files

    workdir = _prepare(tmp_path, "pass\n", {"x": 1})
    (workdir / files.CANCEL_MARKER).write_text("{}")
    os.mkfifo(workdir / files.LAUNCHER_LOG)  # what a trial left may be a FIFO: removed, never opened
    _prepare(tmp_path, "pass\n", {"x": 2})
    assert not (workdir / files.CANCEL_MARKER).exists() and not (workdir / files.LAUNCHER_LOG).exists()


def test_the_panda_job_wrapper_names_the_contracts_files_as_the_core_does() -> None:
    """The wrapper repeats the file names (the grid node may not have aid2e): they must agree."""
    job_wrapper = pytest.importorskip("aid2e_panda.job_wrapper")
    from aid2e.jobs import files

    for name in ("STATUS_FILE", "RESULT_FILE", "STDOUT_FILE", "STDERR_FILE"):
        assert getattr(job_wrapper, name) == getattr(files, name), name
