"""SIGKILL a controller running trials made of stages while fan-out jobs run, resume it, and check
that the campaign finishes with exact values and that no job ran twice, as counted by the jobs
themselves: running jobs are followed again, ended ones collected, finished ones never rerun.
The controller is tests/drich_toy.py run as a script; its simulations sleep 1 s each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from drich_toy import expected
from test_workflows import check_toy_campaign, runs

import aid2e

TOY = Path(__file__).with_name("drich_toy.py")
TOTAL = 6


def controller(command: str, root: Path, simulate_on: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TOY), command, str(root), str(TOTAL), simulate_on],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def kill_while_simulations_run(root: Path, proc: subprocess.Popen, simulations: int,
                               signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to the controller once ``simulations`` simulate jobs have started (they run 1 s)."""
    log = root / "runs.log"
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        started = sum(1 for line in log.read_text().splitlines() if " simulate " in line) if log.exists() else 0
        if started >= simulations:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the controller ended before the kill point: {proc.communicate()[1][-2000:]}"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    if signum == signal.SIGTERM:  # it stopped launching, saved, and said how to resume
        assert "aid2e resume" in err and "done" not in out, err[-2000:]


def resume_and_check(root: Path, simulate_on: str) -> None:
    resumed = controller("resume", root, simulate_on)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert f"done {TOTAL}" in out
    state_dir = root / "jobs" / "drich_killed"
    scheduler = aid2e.AxScheduler.resume(str(state_dir), aid2e.JobLibRunner(n_jobs=1, pool="threading"))
    check_toy_campaign(scheduler, root / "runs.log", TOTAL, some_penalized=False)
    assert any(expected(r.parameters["x"], r.parameters["y"]) is not None for r in scheduler.trials.values())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_controller_resumes_a_staged_campaign_without_running_a_job_twice(tmp_path, signum):
    proc = controller("start", tmp_path, "joblib")
    kill_while_simulations_run(tmp_path, proc, simulations=6, signum=signum)
    killed = runs(tmp_path / "runs.log")
    resume_and_check(tmp_path, "joblib")
    # jobs that were running when the controller died were followed, not started again
    assert all(n == 1 for n in runs(tmp_path / "runs.log").values()) and killed


@pytest.mark.timeout(300)
def test_aid2e_resume_restores_the_saved_workflow(tmp_path):
    """The workflow is saved with the campaign: ``aid2e resume DIR`` rebuilds it (functions by
    module path, the runner from its description) and runs more trials, no Python needed."""
    from drich_toy import PENALTY, workflow, write_scripts

    from aid2e.testing.experiments import unit_square_ax_client

    scripts = write_scripts(tmp_path / "scripts")
    runs_log = tmp_path / "runs.log"
    runner = aid2e.JobLibRunner(n_jobs=4, pool="threading")
    scheduler = aid2e.AxScheduler(unit_square_ax_client("drich_cli", objectives=("sep", "acc")), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "penalty": PENALTY, "max_parallel_trials": 2})
    scheduler.set_workflow(workflow(scripts, runs_log))
    scheduler.run_optimization(max_trials=2)
    runner.close()
    where = scheduler.experiment_dir
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "aid2e", "resume", str(where), "--max-trials", "3"],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = aid2e.AxScheduler.resume(str(where))
    assert list(resumed.objective.for_run().stages) == ["geometry", "simulate", "reconstruct", "analyze"]
    check_toy_campaign(resumed, runs_log, 5, some_penalized=False)
    status = subprocess.run([sys.executable, "-m", "aid2e", "status", str(where)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert status.returncode == 0 and "10 jobs: 10 completed" in status.stdout


def test_a_workflow_that_cannot_be_restored_says_to_set_it_again(tmp_path):
    from aid2e.testing.experiments import unit_square_ax_client

    runner = aid2e.JobLibRunner(n_jobs=2, pool="threading")
    scheduler = aid2e.AxScheduler(unit_square_ax_client("lambda_flow"), runner, {"job_output_dir": str(tmp_path)})
    scheduler.set_workflow(aid2e.Workflow([aid2e.Stage("only", function=lambda x, y: {"objective": x})]))
    scheduler.run_optimization(max_trials=1)
    runner.close()
    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir))
    with pytest.raises(aid2e.ConfigError) as info:
        resumed.run_optimization(max_trials=1)
    assert str(info.value).startswith("the campaign's workflow cannot be restored (stage 'only': its function "
                                      "<unimportable")
    assert str(info.value).endswith("call set_workflow(...) with it before run_optimization")


def test_resuming_with_another_workflow_is_one_line(tmp_path):
    """Trials in flight ran under the saved workflow: set another and the run refuses, naming it."""
    from aid2e.testing.experiments import unit_square_ax_client

    runner = aid2e.JobLibRunner(n_jobs=2, pool="threading")
    scheduler = aid2e.AxScheduler(unit_square_ax_client("changed_flow"), runner, {"job_output_dir": str(tmp_path)})
    scheduler.set_workflow(aid2e.Workflow([aid2e.Stage("only", function="drich_toy:x_plus_y")]))
    scheduler.run_optimization(max_trials=1)
    runner.close()
    saved = scheduler.experiment_dir / "trials.json"  # as if the controller had died mid-trial
    document = json.loads(saved.read_text())
    record = document["scheduler"]["trials"][0]
    record.update(status="RUNNING", ended_at=None, metrics={})
    record["jobs"][0]["status"] = "RUNNING"
    saved.write_text(json.dumps(document))
    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir))
    resumed.set_workflow(aid2e.Workflow([aid2e.Stage("other", function="drich_toy:x_plus_y")]))
    with pytest.raises(aid2e.ConfigError) as info:
        resumed.run_optimization(max_trials=1)
    assert str(info.value) == ("trial 0 is running with other stages or fan-out than the workflow set now (its jobs: "
                               "only/job): set the campaign's own workflow to resume it")
