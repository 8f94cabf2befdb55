"""A Slurm node stopped mid-job (issue 7).

Slurm requeues a batch job whose node fails by default and runs it again behind aid2e's back.
aid2e submits with ``--no-requeue``: the job ends NODE_FAIL, the trial's attempt fails as a
retryable "node failure", and the scheduler runs the trial again up to ``max_retries``.

The real-Slurm tests set the (single) node DOWN while a trial's job runs, which is what a
failed node looks like to slurmctld: it ends the node's jobs as NODE_FAIL at once. Here slurmd
is still alive and SIGTERMs them ("terminated": the launcher records the signal). To stand for
a node that lost power, where nothing is recorded ("sigkilled"), the script ignores SIGTERM
and the test SIGKILLs launcher and script once Slurm says NODE_FAIL. (Slurm itself does not:
with proctrack/linuxproc, slurmstepd is done with the job as soon as the batch shell dies and
loses track of the orphaned launcher; SIGSTOPping the processes does not work either, Slurm
sends SIGCONT before SIGTERM.) Killing slurmd does not end the job in test time: slurmctld
waits SlurmdTimeout (300 s) before it marks the node down.
The node is always resumed afterwards. (The single test node is this machine: the test looks
at the job's processes directly.)
Above them, how every end state maps to a JobResult (no cluster needed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

import aid2e
from aid2e.testing.requirements import require
from aid2e.types import JobHandle, JobState
from aid2e_psij import SlurmRunner
from aid2e_psij.runner import _Seen
from aid2e_psij.testing import node_down, node_usable, resume_node

JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- end states -> JobResult
def _ended_job(tmp_path: Path, status: dict | None, wrapper_exit: bool = False) -> tuple[SlurmRunner, JobHandle]:
    runner = SlurmRunner(partition="debug", config={"work_directory": str(tmp_path / "psij")})
    workdir = tmp_path / "trial"
    workdir.mkdir()
    if status is not None:
        (workdir / "aid2e_status.json").write_text(json.dumps({"pid": 1, "started_at": 0.0, **status}))
    if wrapper_exit:
        (tmp_path / "psij" / "slurm").mkdir(parents=True)
        (tmp_path / "psij" / "slurm" / "42.ec").write_text("1\n")
    return runner, JobHandle(backend="psij", native_id="42", workdir=str(workdir), submitted_at=0.0)


KILLED = {"signal": "SIGTERM", "ended_at": 1.0}
TRAPPED = {"exit_code": 143, "ended_at": 1.0}  # a script that catches SIGTERM and exits


@pytest.mark.parametrize(("code", "message", "status", "cause", "retryable"), [
    ("NF", "A node required by the job is down.", KILLED, "node failure: slurm job 42 ended NODE_FAIL", True),
    ("NF", "A node required by the job is down.", TRAPPED, "node failure: slurm job 42 ended NODE_FAIL", True),
    ("NF", "NodeDown", None, "node failure: slurm job 42 ended NODE_FAIL", True),  # launcher SIGKILLed
    ("PR", "Preempted", KILLED, "preempted: slurm job 42 ended PREEMPTED", True),
    ("BF", "BootFail", None, "node boot failure: slurm job 42 ended BOOT_FAIL", True),
    ("TO", "The job exhausted its time limit.", KILLED, "time limit: slurm job 42 ended TIMEOUT", False),
    ("OOM", "OutOfMemory", KILLED, "out of memory: slurm job 42 ended OUT_OF_MEMORY", False),
    ("DL", "DeadLine", None, "deadline: slurm job 42 ended DEADLINE", False),
])
def test_slurm_end_states_say_what_happened_and_whether_to_retry(tmp_path, code, message, status, cause,
                                                                  retryable):
    runner, handle = _ended_job(tmp_path, status)
    runner._last["42"] = _Seen(JobState.FAILED, message, code)
    result = runner.result(handle)
    assert result.state is JobState.FAILED
    assert result.message.startswith(cause), result.message
    assert message in result.message
    assert result.retryable is retryable


def test_script_failure_is_not_retried(tmp_path):
    runner, handle = _ended_job(tmp_path, {"exit_code": 3, "ended_at": 1.0})
    runner._last["42"] = _Seen(JobState.COMPLETED, "", "CD")  # PSI/J's wrapper itself exits 0
    result = runner.result(handle)
    assert (result.state, result.exit_code, result.retryable) == (JobState.FAILED, 3, False)
    assert result.message == "script exited with code 3"


def test_vanished_job_is_retried(tmp_path, monkeypatch):
    """Out of squeue, unknown to sacct, nothing recorded: an infrastructure failure."""
    runner, handle = _ended_job(tmp_path, {})
    monkeypatch.setattr(runner, "_query_queue", lambda ids: {})
    monkeypatch.setattr(runner, "_sacct_end", lambda native_id: None)
    result = runner.result(handle)
    assert result.state is JobState.FAILED and result.retryable
    assert result.message.startswith("job vanished: slurm job 42 ended without a record of how; "), result.message


def test_job_gone_from_squeue_is_classified_by_sacct(tmp_path, monkeypatch):
    runner, handle = _ended_job(tmp_path, None)
    monkeypatch.setattr(runner, "_query_queue", lambda ids: {})
    monkeypatch.setattr(runner, "_sacct_end", lambda native_id: _Seen(JobState.FAILED, native="NF"))
    result = runner.result(handle)
    assert result.retryable and result.message.startswith("node failure: slurm job 42 ended NODE_FAIL; ")


def test_launcher_that_failed_in_a_finished_batch_script_is_not_retried(tmp_path, monkeypatch):
    """PSI/J's batch script recorded an exit code, so the node was fine: the launcher itself
    failed (e.g. no such interpreter), and running it again would fail the same way."""
    runner, handle = _ended_job(tmp_path, None, wrapper_exit=True)
    (tmp_path / "psij" / "slurm" / "42.out").write_text("python: not found\n")
    runner._last["42"] = _Seen(JobState.COMPLETED, "", "CD")
    result = runner.result(handle)
    assert result.state is JobState.FAILED and not result.retryable
    assert "batch job output: python: not found" in result.message


def test_jobs_are_submitted_non_requeueable(tmp_path):
    runner = SlurmRunner(config={"work_directory": str(tmp_path)})
    command = runner.executor.get_submit_command(None, tmp_path / "job.sh")
    assert command == ["sbatch", "--no-requeue", str(tmp_path / "job.sh")]


@pytest.mark.parametrize("option", ["requeue", "no-requeue"])
def test_requeue_options_are_refused(option):
    with pytest.raises(aid2e.ConfigError, match=r"--no-requeue .*max_retries"):
        SlurmRunner(config={"sbatch_options": {option: ""}})


# ---------------------------------------------------------------- the real node failure
SCRIPT = textwrap.dedent("""
    import json, os, signal, time
    from pathlib import Path
    trial = os.environ["AID2E_TRIAL_INDEX"]
    with open({runs!r}, "a") as log:
        log.write(f"{{trial}} {{os.environ['SLURM_JOB_ID']}}\\n")
    hold = Path({hold!r}) / trial
    if (hold.parent / "ignore-sigterm").exists():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    deadline = time.time() + 180
    while hold.exists() and time.time() < deadline:  # held until the test has taken the node down
        time.sleep(0.1)
    time.sleep(1)
    p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
    json.dump({{"objective": (p["x"] - 0.5) ** 2}}, open(os.environ["AID2E_RESULT_FILE"], "w"))
""")


def ax_client(name):
    from aid2e.testing.experiments import unit_square_ax_client

    return unit_square_ax_client(name, parameters=("x",), seed=5)


def squeue_field(job_id: str, field: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", field], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip()


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def others_running(node: str, ours: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "R,CG,CF", "-w", node, "-o", "%i"], capture_output=True, text=True,
                         timeout=30).stdout.split()
    return [job for job in out if job != ours]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def job_record(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout


class NodeFailure:
    """Takes the node of trial ``target``'s first job down while it runs (from inside the
    scheduler's wait), checks Slurm ended it NODE_FAIL, releases the hold and resumes the node."""

    def __init__(self, runner: SlurmRunner, runs: Path, hold: Path, target: int, sigkill: bool) -> None:
        self.runs, self.hold, self.target, self.sigkill = runs, hold, target, sigkill
        self.pids: list[int] = []  # the failed attempt's launcher and script
        self.failed_job: str | None = None
        self.seconds_to_node_fail: float | None = None
        self.seconds_to_processes_gone: float | None = None
        self.node = ""
        self._wait = runner.wait
        runner.wait = self.wait

    def started(self) -> dict[int, list[str]]:
        started: dict[int, list[str]] = {}
        if self.runs.exists():
            for line in self.runs.read_text().splitlines():
                trial, job = line.split()
                started.setdefault(int(trial), []).append(job)
        return started

    def wait(self, handles, timeout):
        if self.failed_job is None:
            jobs = self.started().get(self.target, [])
            running = {h.native_id: h for h in handles}
            if jobs and jobs[0] in running:
                self.fail_node(jobs[0], Path(running[jobs[0]].workdir))
        return self._wait(handles, min(timeout, 0.5))

    def fail_node(self, job: str, workdir: Path) -> None:
        self.failed_job = job
        self.node = squeue_field(job, "%N")
        assert self.node, f"job {job} runs on no node"
        # the node is shared: do not kill somebody else's jobs (another test run's)
        deadline = time.monotonic() + 90
        while others_running(self.node, job) and time.monotonic() < deadline:
            time.sleep(1)
        busy = others_running(self.node, job)
        require("slurm", not busy, f"node {self.node} runs other jobs {busy}: taking it down would kill them")
        status = json.loads((workdir / "aid2e_status.json").read_text())
        self.pids = [status["pid"], status["child_pid"]]
        with node_down(self.node, "aid2e-test-node-failure"):
            started = time.monotonic()
            wait_for(f"job {job} to end NODE_FAIL", lambda: squeue_field(job, "%T") == "NODE_FAIL", 30)
            self.seconds_to_node_fail = time.monotonic() - started
            if self.sigkill:  # the node's power is gone: its processes with it, unrecorded
                time.sleep(0.5)  # (time for a SIGTERM the script should not have ignored)
                assert "ended_at" not in json.loads((workdir / "aid2e_status.json").read_text())
                for pid in self.pids:
                    os.kill(pid, signal.SIGKILL)
            # held until they ended: no result from this attempt
            wait_for(f"job {job}'s processes to end",
                     lambda: not [pid for pid in self.pids if alive(pid)], 60)
            self.seconds_to_processes_gone = time.monotonic() - started
            (self.hold / str(self.target)).unlink()  # the retry runs straight through
        log.info("job %s: NODE_FAIL after %.2f s, its processes gone after %.2f s", job, self.seconds_to_node_fail,
                 self.seconds_to_processes_gone)


@pytest.fixture
def campaign(slurm_cluster, tmp_path, caplog):
    """A script objective that logs each execution and is held (trial ``target``) until the
    node is down; afterwards the node is running jobs again and no job of the test is left."""
    runs, hold = tmp_path / "runs.log", tmp_path / "hold"
    hold.mkdir()
    script = tmp_path / "objective.py"
    script.write_text(SCRIPT.format(runs=str(runs), hold=str(hold)))
    caplog.set_level(logging.INFO, logger="aid2e")
    failures: list[NodeFailure] = []

    def make(name: str, target: int, max_retries: int, ignore_sigterm: bool = False
             ) -> tuple[aid2e.AxScheduler, NodeFailure]:
        (hold / str(target)).touch()
        if ignore_sigterm:
            (hold / "ignore-sigterm").touch()
        runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:05:00",
                             config={"work_directory": str(tmp_path / "psij"), "status_grace": 8})
        failure = NodeFailure(runner, runs, hold, target, sigkill=ignore_sigterm)
        scheduler = aid2e.AxScheduler(ax_client(name), runner, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "max_parallel_trials": 1,
            "max_retries": max_retries, "tolerated_failure_rate": 1.0})
        scheduler.set_script_objective(str(script))
        failures.append(failure)
        return scheduler, failure

    try:
        yield make
    finally:
        for child in hold.iterdir():
            child.unlink()
        for failure in failures:
            for pid in failure.pids:  # normally long gone (Slurm ends them)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            jobs = [job for started in failure.started().values() for job in started]
            if jobs:
                subprocess.run(["scancel", *jobs], capture_output=True, timeout=30)
            if failure.node and not node_usable(failure.node):
                resume_node(failure.node)


def assert_never_requeued(job_ids: list[str]) -> None:
    """Each job was submitted non-requeueable and ran once: scontrol shows Requeue=0 Restarts=0,
    and Slurm's job completion log has exactly one record per job (a requeued job has one per run)."""
    for job in job_ids:
        record = job_record(job)
        assert re.search(r"\bRequeue=0 Restarts=0\b", record), f"job {job}: {record}"
    if JOBCOMP_LOG.exists():
        ends = Counter(re.match(r"JobId=(\d+) ", line).group(1) for line in JOBCOMP_LOG.read_text().splitlines()
                       if line.startswith("JobId="))
        assert {job: ends[job] for job in job_ids} == {job: 1 for job in job_ids}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["terminated", "sigkilled"])
def test_node_failure_is_retried_once_and_completes(campaign, caplog, how):
    scheduler, failure = campaign(f"node_failure_retry_{how}", target=1, max_retries=1,
                                  ignore_sigterm=how == "sigkilled")
    scheduler.run_optimization(max_trials=3)

    assert failure.failed_job is not None, "the target trial's job was never seen running"
    assert [t.status.name for t in scheduler.experiment.trials.values()] == ["COMPLETED"] * 3, [
        t.status_reason for t in scheduler.experiment.trials.values()]
    started = failure.started()
    assert {trial: len(jobs) for trial, jobs in started.items()} == {0: 1, 1: 2, 2: 1}  # only trial 1 twice
    assert started[1][0] == failure.failed_job != started[1][1]
    assert scheduler.trials[1].handle.native_id == started[1][1]
    assert scheduler.trials[1].attempts == 2
    assert [r.attempts for i, r in scheduler.trials.items() if i != 1] == [1, 1]
    retry_logs = [r.getMessage() for r in caplog.records if "running it again" in r.getMessage()]
    assert len(retry_logs) == 1, retry_logs
    assert retry_logs[0].startswith(f"trial 1: node failure: slurm job {failure.failed_job} ended NODE_FAIL"), \
        retry_logs[0]
    assert "JobState=NODE_FAIL" in job_record(failure.failed_job)
    assert_never_requeued([job for jobs in started.values() for job in jobs])
    # the failed attempt's processes were gone before the retry could share the trial directory
    assert not [pid for pid in failure.pids if alive(pid)]
    if how == "sigkilled":  # nothing recorded by the launcher
        assert "job ended without recording an exit status" in retry_logs[0], retry_logs[0]
    else:
        assert "script killed by signal SIGTERM" in retry_logs[0], retry_logs[0]


@pytest.mark.timeout(300)
def test_node_failure_without_retries_fails_the_trial(campaign):
    scheduler, failure = campaign("node_failure_no_retry", target=0, max_retries=0)
    scheduler.run_optimization(max_trials=1)

    assert failure.failed_job is not None, "the trial's job was never seen running"
    trial = scheduler.experiment.trials[0]
    assert trial.status.name == "FAILED"
    assert trial.status_reason.startswith(f"node failure: slurm job {failure.failed_job} ended NODE_FAIL"), \
        trial.status_reason
    assert failure.started() == {0: [failure.failed_job]}  # ran once, not again by aid2e or Slurm
    assert scheduler.trials[0].attempts == 1
    assert "JobState=NODE_FAIL" in job_record(failure.failed_job)
    assert_never_requeued([failure.failed_job])
    # once the job has left squeue, sacct (here: sacct -c, the job completion log) still knows
    assert SlurmRunner()._sacct_end(failure.failed_job) == _Seen(JobState.FAILED, "", "NF")
