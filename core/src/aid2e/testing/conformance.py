"""The conformance suite every execution backend runs: :class:`BackendConformance`.

A third-party backend gets the whole suite by subclassing it in its own tests and saying how
to build the backend; ``make_backend`` also enables the test that a job outlives its submitter::

    # tests/test_conformance.py of the "htcondor" plugin
    import pytest
    from aid2e.testing import BackendConformance
    from aid2e_htcondor import HTCondorRunner

    class TestHTCondorConformance(BackendConformance):
        job_timeout = 600  # a slow batch system may queue jobs for a while

        def make_backend(self):
            return HTCondorRunner(pool="test-pool")

The default ``backend`` fixture starts ``make_backend()`` and closes it after the test; a
subclass may instead define its own ``backend`` fixture (yielding a started backend). Function
job tests run only if ``"function"`` is among the backend's ``kinds``; they use the functions
defined at the top level of this module, so they pickle by reference into workers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import textwrap
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..backend import Backend
from ..errors import SubmitError
from ..jobs.function import call_style_for
from ..jobs.script import script_job
from ..procs import pid_alive
from ..types import (
    FunctionJob,
    JobHandle,
    JobRequest,
    JobResult,
    JobState,
    Measurement,
    ScriptJob,
)

#: A parameter value that breaks anything that passes parameters through a shell.
NASTY = "\"; rm -rf ./victim; touch pwned $(touch pwned2) `touch pwned3` 'x' \\\"y\\\" && echo $HOME"


#: A host file's content that must never reach a trial's message or the logs.
SECRET = "conformance-host-secret-4711"

#: Scripts (bodies for :meth:`BackendConformance.write_script`) that leave a hostile or odd file
#: where aid2e reads; each must fail its own trial only, with a one-line reason, without blocking
#: and without showing anything outside the trial directory (``params["secret"]`` is a host file).
HOSTILE_RESULTS = {
    "fifo": "os.mkfifo(os.environ['AID2E_RESULT_FILE'])\n",
    "dev-zero": "os.symlink('/dev/zero', os.environ['AID2E_RESULT_FILE'])\n",
    "host-file": "os.symlink(params['secret'], os.environ['AID2E_RESULT_FILE'])\n",
    "directory": "os.mkdir(os.environ['AID2E_RESULT_FILE'])\n",
    "deep-json": "write_result('[' * 100000 + ']' * 100000)\n",
    "huge-int": "write_result('{\"objective\": 1' + '0' * 400 + '}')\n",
    "fifo-stderr": "os.unlink('stderr.txt')\nos.mkfifo('stderr.txt')\nsys.exit(1)\n",
}
#: A script that makes its status file a FIFO while it runs (its launcher replaces it at the end).
FIFO_STATUS_WHILE_RUNNING = """
    while not os.path.exists('aid2e_status.json'):
        time.sleep(0.01)
    os.mkfifo('fifo.tmp')
    os.replace('fifo.tmp', 'aid2e_status.json')
    time.sleep(1.5)
    write_result({"objective": 1.0})
"""


# ------------------------------------------------------------------ function objectives
# Top-level so that process-based workers can import them by name.
def objective_ok(x: float, y: float) -> dict[str, Any]:
    """Exact metrics, in both result forms."""
    return {"objective": x * 2 + y, "noisy": {"mean": x, "sem": 0.25}}


def objective_dict_style(parameterization: dict[str, Any]) -> dict[str, Any]:
    """The one-dict call style (``fn(parameterization)``)."""
    return {"objective": parameterization["x"] - parameterization["y"]}


def objective_raises(x: float, y: float) -> dict[str, Any]:
    raise ValueError(f"conformance-boom x={x}")


def objective_returns_string(x: float, y: float) -> Any:
    return "not a dict of metrics"


def objective_returns_nan(x: float, y: float) -> dict[str, Any]:
    return {"objective": math.nan}


def objective_sleep(seconds: float) -> dict[str, Any]:
    """Sleep, then report how long (for timing tests)."""
    time.sleep(seconds)
    return {"slept": seconds}


def objective_worker_pid(x: float, y: float) -> dict[str, Any]:
    """The id of the process the function ran in (to show where it ran)."""
    return {"objective": float(os.getpid())}


def objective_crash_worker(**_parameters: Any) -> dict[str, Any]:
    """Kill the worker process outright (only for process-based backends' own tests)."""
    os._exit(13)


# ------------------------------------------------------------------ helpers
def process_gone(pid: int) -> bool:
    """True if ``pid`` is no longer running on this machine (a zombie counts as gone)."""
    return not pid_alive(pid)


def still_running(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for the processes ``pids`` to be gone; those still running."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if not process_gone(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


class BackendConformance:
    """Tests every :class:`~aid2e.backend.Backend` must pass. Subclass it (see the module docstring)."""

    #: Seconds a short job may take from submit to a final state (raise it for batch systems).
    job_timeout: float = 60.0
    #: Seconds a canceled job may take to poll as CANCELED.
    cancel_timeout: float = 10.0
    #: The backend finds a job submitted for a request again (``adopt``); False: ``adopt`` may only
    #: say it cannot (None), and the scheduler submits such a trial again after a crash.
    can_adopt: bool = True

    # ------------------------------------------------------------ how to build the backend
    def make_backend(self) -> Backend | None:
        """A fresh, not yet started backend of the configuration under test (``None``: not provided)."""
        return None

    @pytest.fixture
    def backend(self) -> Any:
        backend = self.make_backend()
        if backend is None:
            pytest.fail(f"{type(self).__name__} must define make_backend() or a 'backend' fixture")
        backend.start()
        try:
            yield backend
        finally:
            backend.close()

    # ------------------------------------------------------------ helpers
    @staticmethod
    def write_script(tmp_path: Path, name: str, body: str) -> Path:
        """Write a Python script ``name``.py whose body is ``body`` (dedented; json, os, sys,
        time are imported and ``params`` holds the parameters) and return its path."""
        path = tmp_path / "scripts" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "import json, os, sys, time\n"
            "with open(os.environ['AID2E_PARAMS_FILE']) as _f:\n"
            "    params = json.load(_f)\n"
            "def write_result(value):\n"
            "    with open(os.environ['AID2E_RESULT_FILE'], 'w') as _f:\n"
            "        _f.write(value if isinstance(value, str) else json.dumps(value))\n"
        )
        path.write_text(header + textwrap.dedent(body))
        return path

    @staticmethod
    def make_request(tmp_path: Path, index: int, job: Any, parameters: dict[str, Any] | None = None,
                     ) -> JobRequest:
        """A request of experiment "conformance" for trial ``index``; ``job`` may be a script path."""
        if isinstance(job, (str, Path)):
            job = script_job(job)
        return JobRequest(
            experiment="conformance",
            trial_index=index,
            parameters=dict(parameters if parameters is not None else {"x": 1.25, "y": 3}),
            job=job,
            workdir=str(tmp_path / f"trial_{index}"),
        )

    def wait_final(self, backend: Backend, handles: Sequence[JobHandle],
                   timeout: float | None = None) -> dict[str, JobState]:
        """Wait (with ``backend.wait``) until every handle polls final; fail after ``timeout`` s."""
        timeout = self.job_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            states = backend.poll(handles)
            missing = [h.native_id for h in handles if h.native_id not in states]
            assert not missing, f"poll() returned no state for {missing}"
            pending = [h for h in handles if not states[h.native_id].is_final]
            if not pending:
                return states
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                summary = ", ".join(f"{h.native_id}={states[h.native_id].value}" for h in pending)
                pytest.fail(f"jobs not in a final state after {timeout:.0f}s: {summary}")
            backend.wait(pending, min(remaining, 5.0))

    def run_job(self, backend: Backend, request: JobRequest,
                timeout: float | None = None) -> tuple[JobHandle, JobState, JobResult]:
        """Submit ``request``, wait for its end; return its handle, polled state and result."""
        handle = backend.submit(request)
        state = self.wait_final(backend, [handle], timeout)[handle.native_id]
        result = backend.result(handle)
        assert result.state is state, f"poll said {state.value} but result() says {result.state.value}"
        return handle, state, result

    def run_script(self, backend: Backend, tmp_path: Path, body: str, index: int = 0,
                   parameters: dict[str, Any] | None = None) -> JobResult:
        """Run the script ``body`` as trial ``index`` on ``backend`` until it ends; its result."""
        path = self.write_script(tmp_path, f"script_{index}", body)
        return self.run_job(backend, self.make_request(tmp_path, index, path, parameters))[2]

    def skip_unless_function_kind(self, backend: Backend) -> None:
        """Skip the calling test when the backend does not run function jobs natively."""
        if "function" not in backend.kinds:
            pytest.skip(f"backend {backend.name!r} does not run function jobs")

    def function_request(self, tmp_path: Path, index: int, function: Any,
                         parameters: dict[str, Any] | None = None) -> JobRequest:
        """A request running ``function`` as trial ``index`` (parameters default to x=1.5, y=2.0)."""
        parameters = dict(parameters if parameters is not None else {"x": 1.5, "y": 2.0})
        job = FunctionJob(function=function, call_style=call_style_for(function, parameters))
        return self.make_request(tmp_path, index, job, parameters)

    # ------------------------------------------------------------ status
    def test_status_is_one_line_saying_whether_it_is_ready(self, backend: Backend) -> None:
        """What ``aid2e validate`` shows for the backend: ``ready, ...`` or ``not ready: ...``."""
        status = backend.status()
        assert isinstance(status, str) and "\n" not in status, status
        assert status.startswith(("ready, ", "not ready: ")), status

    # ------------------------------------------------------------ script jobs
    @pytest.mark.timeout(180)
    def test_script_completes_with_exact_metrics(self, backend: Backend, tmp_path: Path) -> None:
        result = self.run_script(backend, tmp_path, """
            write_result({"objective": params["x"] * 2 + params["y"],
                          "noisy": {"mean": 0.125, "sem": 0.5}, "zero": 0})
        """)
        assert result.state is JobState.COMPLETED, result.message
        assert result.metrics == {
            "objective": Measurement(mean=5.5),
            "noisy": Measurement(mean=0.125, sem=0.5),
            "zero": Measurement(mean=0.0),
        }

    @pytest.mark.timeout(180)
    def test_script_sees_parameters_exactly(self, backend: Backend, tmp_path: Path) -> None:
        parameters = {"nasty": NASTY, "i": 7, "f": 0.1, "b": True, "text": "é ü ✓ $PATH *", "neg": -3}
        path = self.write_script(tmp_path, "echo_params", """
            with open("seen.json", "w") as f:
                json.dump({"params": params, "argv": sys.argv[1:], "cwd": os.getcwd(),
                           "trial": os.environ["AID2E_TRIAL_INDEX"],
                           "same_file": os.environ["JOB_PARAMS_FILE"] == os.environ["AID2E_PARAMS_FILE"]}, f)
            write_result({"objective": 1.0})
        """)
        request = self.make_request(tmp_path, 4, script_job(path, args=(NASTY, "*")), parameters)
        workdir = Path(request.workdir)
        (workdir / "victim").mkdir(parents=True)
        _, state, result = self.run_job(backend, request)
        assert state is JobState.COMPLETED, result.message
        seen = json.loads((workdir / "seen.json").read_text())
        assert seen["params"] == parameters
        assert [type(v) for v in seen["params"].values()] == [type(v) for v in parameters.values()]
        assert seen["argv"] == [NASTY, "*"], "arguments must reach the script unchanged (no shell)"
        assert Path(seen["cwd"]).resolve() == workdir.resolve(), "the trial directory must be the cwd"
        assert seen["trial"] == "4"
        assert seen["same_file"] is True
        assert (workdir / "victim").is_dir(), "a parameter was run by a shell"
        for where in (workdir, tmp_path, Path.cwd()):
            for name in ("pwned", "pwned2", "pwned3"):
                assert not (where / name).exists(), f"a parameter was run by a shell ({where / name})"

    @pytest.mark.timeout(180)
    def test_nonzero_exit_fails_with_code_and_stderr(self, backend: Backend, tmp_path: Path) -> None:
        result = self.run_script(backend, tmp_path, """
            print("conformance-stderr-marker", file=sys.stderr)
            sys.exit(3)
        """)
        assert result.state is JobState.FAILED
        assert result.exit_code == 3
        assert "3" in result.message
        assert "conformance-stderr-marker" in result.message, "the message must hold stderr's tail"

    @pytest.mark.timeout(180)
    def test_exit_zero_without_result_fails(self, backend: Backend, tmp_path: Path) -> None:
        result = self.run_script(backend, tmp_path, "print('forgot to write a result')\n")
        assert result.state is JobState.FAILED
        assert "AID2E_RESULT_FILE" in result.message
        assert not result.metrics

    @pytest.mark.timeout(180)
    def test_malformed_result_fails(self, backend: Backend, tmp_path: Path) -> None:
        result = self.run_script(backend, tmp_path, "write_result('{\"objective\": 1.0')\n")
        assert result.state is JobState.FAILED
        assert "JSON" in result.message
        assert not result.metrics

    @pytest.mark.timeout(300)
    def test_hostile_result_files_fail_their_trial_only(self, backend: Backend, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
        """A FIFO, a symlink (to /dev/zero, to a host file), a directory, JSON nested too deeply,
        a 400-digit number where the result should be, a FIFO as stderr: each fails its own
        trial with a one-line reason and nothing of the host file, without hanging the backend;
        a healthy job and one whose status file is a FIFO while it runs complete beside them."""
        caplog.set_level(logging.DEBUG)
        secret = tmp_path / "host-secret.json"
        secret.write_text(json.dumps({"objective": 1.0, "note": SECRET}))
        jobs = {name: self.write_script(tmp_path, f"hostile_{i}", body)
                for i, (name, body) in enumerate(HOSTILE_RESULTS.items())}
        jobs["healthy"] = self.write_script(tmp_path, "healthy", 'write_result({"objective": params["x"]})\n')
        jobs["fifo-status"] = self.write_script(tmp_path, "fifo_status", FIFO_STATUS_WHILE_RUNNING)
        handles = {name: backend.submit(self.make_request(tmp_path, i, path, {"x": 0.5, "secret": str(secret)}))
                   for i, (name, path) in enumerate(jobs.items())}
        states = self.wait_final(backend, list(handles.values()))
        results = {name: backend.result(handle) for name, handle in handles.items()}
        for name in ("healthy", "fifo-status"):
            assert states[handles[name].native_id] is JobState.COMPLETED, f"{name}: {results[name].message}"
            assert results[name].metrics["objective"] == Measurement(mean=0.5 if name == "healthy" else 1.0)
        for name in HOSTILE_RESULTS:
            result = results[name]
            assert states[handles[name].native_id] is JobState.FAILED, f"{name}: {result.message}"
            assert result.state is JobState.FAILED and not result.metrics, name
            assert result.message and "\n" not in result.message, f"{name}: {result.message!r}"
            assert SECRET not in result.message, f"{name}: a host file's content reached the message"
        assert "FIFO" in results["fifo-stderr"].message
        assert SECRET not in caplog.text, "a host file's content reached the logs"

    @pytest.mark.timeout(180)
    def test_nan_result_fails(self, backend: Backend, tmp_path: Path) -> None:
        result = self.run_script(backend, tmp_path, "write_result('{\"objective\": NaN}')\n")
        assert result.state is JobState.FAILED
        assert "objective" in result.message
        assert not result.metrics

    @pytest.mark.timeout(180)
    def test_missing_executable_fails_clearly(self, backend: Backend, tmp_path: Path) -> None:
        missing = str(tmp_path / "no-such-interpreter")
        request = self.make_request(tmp_path, 0, ScriptJob(argv=(missing, "script.py")))
        try:
            handle = backend.submit(request)
        except SubmitError as exc:
            assert "no-such-interpreter" in str(exc)
            return
        state = self.wait_final(backend, [handle])[handle.native_id]
        result = backend.result(handle)
        assert state is JobState.FAILED
        assert result.state is JobState.FAILED
        assert "no-such-interpreter" in result.message, result.message

    @pytest.mark.timeout(240)
    def test_poll_many_handles_in_one_call(self, backend: Backend, tmp_path: Path) -> None:
        path = self.write_script(tmp_path, "index", """
            write_result({"index": int(os.environ["AID2E_TRIAL_INDEX"]) + params["x"]})
        """)
        handles = [backend.submit(self.make_request(tmp_path, i, path, {"x": 0.5})) for i in range(6)]
        assert len({h.native_id for h in handles}) == len(handles), "native ids must be unique"
        first = backend.poll(handles)
        assert set(first) == {h.native_id for h in handles}
        assert all(isinstance(s, JobState) for s in first.values())
        states = self.wait_final(backend, handles)
        for i, handle in enumerate(handles):
            result = backend.result(handle)
            assert states[handle.native_id] is JobState.COMPLETED, result.message
            assert result.metrics == {"index": Measurement(mean=i + 0.5)}

    @pytest.mark.timeout(180)
    def test_cancel_stops_a_long_job(self, backend: Backend, tmp_path: Path) -> None:
        path = self.write_script(tmp_path, "forever", """
            import socket
            with open("pid.txt", "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}")
            n = 0
            end = time.time() + 60
            while time.time() < end:
                n += 1
                with open("heartbeat.txt", "w") as f:
                    f.write(str(n))
                time.sleep(0.05)
            write_result({"objective": 1.0})
        """)
        request = self.make_request(tmp_path, 0, path)
        workdir = Path(request.workdir)
        handle = backend.submit(request)
        deadline = time.monotonic() + self.job_timeout
        while not (workdir / "heartbeat.txt").exists():
            assert time.monotonic() < deadline, "the long job never started"
            assert not backend.poll([handle])[handle.native_id].is_final, backend.result(handle).message
            time.sleep(0.05)
        started = time.monotonic()
        backend.cancel(handle)
        state = self.wait_final(backend, [handle], self.cancel_timeout)[handle.native_id]
        assert state is JobState.CANCELED
        assert time.monotonic() - started < self.cancel_timeout
        assert backend.result(handle).state is JobState.CANCELED
        # really gone: the heartbeat stops (and, on this machine, the process is not running)
        pid_text, _, host = (workdir / "pid.txt").read_text().partition(" ")
        deadline = time.monotonic() + 10
        while True:
            before = (workdir / "heartbeat.txt").read_text()
            time.sleep(0.5)
            after = (workdir / "heartbeat.txt").read_text()
            gone = before == after and (host != socket.gethostname() or process_gone(int(pid_text)))
            if gone:
                break
            assert time.monotonic() < deadline, "the canceled job is still running"
        assert backend.poll([handle])[handle.native_id] is JobState.CANCELED

    @pytest.mark.timeout(240)
    def test_job_outlives_its_submitter(self, tmp_path: Path) -> None:
        first = self.make_backend()
        if first is None:
            pytest.skip("make_backend() is not provided")
        path = self.write_script(tmp_path, "slow", """
            time.sleep(2)
            write_result({"objective": params["x"] + 1})
        """)
        first.start()
        try:
            handle = first.submit(self.make_request(tmp_path, 0, path))
            submitted = time.monotonic()
            assert first.outlives_controller(handle) is True, (
                "outlives_controller() must say True for a job that outlives its submitter (a first "
                "Ctrl-C then leaves it running for a resumed scheduler instead of waiting for it)")
        finally:
            first.close()
        second = self.make_backend()
        assert second is not None
        second.start()
        try:
            state = second.poll([handle])[handle.native_id]
            if time.monotonic() - submitted < 1.5:
                assert not state.is_final, f"the job ended with its submitter: {state.value}"
            states = self.wait_final(second, [handle])
            result = second.result(handle)
            assert states[handle.native_id] is JobState.COMPLETED, result.message
            assert result.metrics == {"objective": Measurement(mean=2.25)}
        finally:
            second.close()

    @pytest.mark.timeout(180)
    def test_wait_returns_soon_after_a_job_ends(self, backend: Backend, tmp_path: Path) -> None:
        path = self.write_script(tmp_path, "short", """
            time.sleep(0.5)
            write_result({"objective": 1.0})
            with open("ended_at.txt", "w") as f:
                f.write(repr(time.time()))
        """)
        request = self.make_request(tmp_path, 0, path)
        handle = backend.submit(request)
        start = time.monotonic()
        while not backend.poll([handle])[handle.native_id].is_final:
            assert time.monotonic() - start < self.job_timeout, "the short job did not end"
            backend.wait([handle], 30.0)
        seen_at = time.time()
        ended_at = float((Path(request.workdir) / "ended_at.txt").read_text())
        assert seen_at - ended_at < 1.0, f"wait() noticed the end {seen_at - ended_at:.2f}s late"
        assert backend.result(handle).state is JobState.COMPLETED

    # ------------------------------------------------------------ following jobs again
    def _reader(self) -> Backend | None:
        """A second, started backend instance (a restarted controller) if ``make_backend`` builds one."""
        other = self.make_backend()
        if other is not None:
            other.start()
        return other

    @pytest.mark.timeout(240)
    def test_a_handle_round_trips_through_json_and_a_new_backend_follows_it(self, backend: Backend,
                                                                            tmp_path: Path) -> None:
        """What a restarted controller does: the handle saved as JSON, read back, polled and read
        by a new backend instance to the same result."""
        from .. import serialize

        path = self.write_script(tmp_path, "round_trip", 'time.sleep(0.5)\nwrite_result({"objective": params["x"]})\n')
        handle = backend.submit(self.make_request(tmp_path, 0, path))
        text = json.dumps(serialize.to_json(handle))
        again = serialize.from_json(json.loads(text), JobHandle)
        assert again == handle, "a handle must survive its JSON round trip unchanged"
        other = self._reader()
        reader = other if other is not None else backend
        try:
            states = self.wait_final(reader, [again])
            result = reader.result(again)
            assert states[again.native_id] is JobState.COMPLETED, result.message
            assert result.metrics == {"objective": Measurement(mean=1.25)}
            assert backend.result(handle).metrics == result.metrics
        finally:
            if other is not None:
                other.close()

    @pytest.mark.timeout(240)
    def test_adopt_finds_the_job_of_its_attempt_and_nothing_else(self, backend: Backend, tmp_path: Path) -> None:
        """A controller that died between submitting a job and saving its handle: ``adopt`` finds
        the job by the attempt's token (and its result); a request never submitted, or another
        attempt's token in the same trial directory, finds nothing (the trial is submitted then)."""
        import attrs

        path = self.write_script(tmp_path, "adopted", 'time.sleep(0.5)\nwrite_result({"objective": params["x"] + 1})\n')
        request = attrs.evolve(self.make_request(tmp_path, 0, path), token="conformance-attempt-1")
        never = attrs.evolve(self.make_request(tmp_path, 1, path), token="conformance-never-submitted")
        assert backend.adopt(never) is None, "adopt() found a job for a request that was never submitted"
        handle = backend.submit(request)
        adopted = backend.adopt(request)
        if not self.can_adopt:
            assert adopted is None or adopted.native_id == handle.native_id
            self.wait_final(backend, [handle])
            return
        assert adopted is not None, "adopt() did not find the job submitted for this request"
        states = self.wait_final(backend, [adopted])
        result = backend.result(adopted)
        assert states[adopted.native_id] is JobState.COMPLETED, result.message
        assert result.metrics == {"objective": Measurement(mean=2.25)}
        # the same directory under a new attempt's token: the ended job is not this attempt's
        assert backend.adopt(attrs.evolve(request, token="conformance-attempt-2")) is None

    @pytest.mark.timeout(240)
    def test_cancel_after_the_end_changes_nothing(self, backend: Backend, tmp_path: Path) -> None:
        """Canceling a job that already ended (the scheduler's cancel can race a job's end) raises
        nothing and leaves its state and result as they were, completed or failed; also when a
        restarted controller (a new backend instance) cancels it before it has looked at it."""
        done = self.write_script(tmp_path, "done", 'write_result({"objective": 0.5})\n')
        failed = self.write_script(tmp_path, "failed", "print('conformance-failure', file=sys.stderr)\nsys.exit(2)\n")
        handles = [backend.submit(self.make_request(tmp_path, i, p)) for i, p in enumerate((done, failed))]
        before = self.wait_final(backend, handles)
        results = [backend.result(h) for h in handles]
        for handle in handles:
            backend.cancel(handle)
        after = backend.poll(handles)
        assert after == before == {handles[0].native_id: JobState.COMPLETED, handles[1].native_id: JobState.FAILED}
        again = [backend.result(h) for h in handles]
        assert again[0].metrics == results[0].metrics == {"objective": Measurement(mean=0.5)}
        assert again[1].state is JobState.FAILED and again[1].message == results[1].message
        # a restarted controller cancels them before it has looked at them: the same again
        other = self._reader()
        if other is not None:
            try:
                for handle in handles:
                    other.cancel(handle)
                assert self.wait_final(other, handles) == before, "canceling an ended job after a restart changed it"
                later = [other.result(h) for h in handles]
                assert later[0].metrics == results[0].metrics
                assert later[1].state is JobState.FAILED and later[1].message == results[1].message
            finally:
                other.close()

    # ------------------------------------------------------------ function jobs
    @pytest.mark.timeout(180)
    def test_function_completes_with_exact_metrics(self, backend: Backend, tmp_path: Path) -> None:
        self.skip_unless_function_kind(backend)
        handle, state, result = self.run_job(backend, self.function_request(tmp_path, 0, objective_ok))
        assert state is JobState.COMPLETED, result.message
        assert result.metrics == {"objective": Measurement(mean=5.0),
                                  "noisy": Measurement(mean=1.5, sem=0.25)}
        _, state, result = self.run_job(backend, self.function_request(tmp_path, 1, objective_dict_style))
        assert state is JobState.COMPLETED, result.message
        assert result.metrics == {"objective": Measurement(mean=-0.5)}

    @pytest.mark.timeout(180)
    def test_function_exception_fails_with_its_text(self, backend: Backend, tmp_path: Path) -> None:
        self.skip_unless_function_kind(backend)
        _, state, result = self.run_job(backend, self.function_request(tmp_path, 0, objective_raises))
        assert state is JobState.FAILED
        assert "conformance-boom x=1.5" in result.message
        assert "ValueError" in result.message

    @pytest.mark.timeout(180)
    @pytest.mark.parametrize("function", [objective_returns_string, objective_returns_nan],
                             ids=["string", "nan"])
    def test_function_bad_return_fails(self, backend: Backend, tmp_path: Path, function: Any) -> None:
        self.skip_unless_function_kind(backend)
        _, state, result = self.run_job(backend, self.function_request(tmp_path, 0, function))
        assert state is JobState.FAILED
        assert result.message
        assert not result.metrics


__all__ = ["BackendConformance", "FIFO_STATUS_WHILE_RUNNING", "HOSTILE_RESULTS", "NASTY", "SECRET", "objective_ok",
           "objective_sleep", "objective_crash_worker"]
