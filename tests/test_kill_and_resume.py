"""SIGKILL the controller at different points of a campaign, resume it, and check that every
trial completed exactly once with exact values: jobs still running are followed, jobs that ended
while the controller was down are collected, nothing is submitted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import aid2e

CONTROLLER = Path(__file__).with_name("campaign_controller.py")
TOTAL = 8


def controller(command, path, runner, env, **kwargs):
    return subprocess.Popen([sys.executable, str(CONTROLLER), command, str(path), str(TOTAL), runner],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def saved_trials(state_dir: Path) -> int:
    try:
        return len(json.loads((state_dir / "trials.json").read_text())["scheduler"]["trials"])
    except (OSError, ValueError, KeyError):
        return 0


def kill_when(state_dir: Path, proc: subprocess.Popen, at_trials: int, extra_delay: float) -> None:
    """SIGKILL the controller once its saved state holds ``at_trials`` trials (plus a delay)."""
    deadline = time.time() + 60
    while saved_trials(state_dir) < at_trials and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(extra_delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        f"the controller ended by itself before the kill point ({proc.returncode}): "
        f"{proc.stderr.read()[-1500:]}")


def check_campaign(state_dir: Path, runs_log: Path) -> None:
    scheduler = aid2e.AxScheduler.resume(str(state_dir))  # the runner rebuilt from the state
    experiment = scheduler.experiment
    launched = sorted(scheduler.trials)
    assert len(launched) == TOTAL
    assert [experiment.trials[i].status.name for i in launched] == ["COMPLETED"] * TOTAL, [
        (i, t.status_reason) for i, t in experiment.trials.items() if t.status.name != "COMPLETED"]
    # Ax trials with no record were generated (quasi-random candidates are generated a wave
    # ahead) but never launched before a kill: abandoned, never run
    assert all(t.status.name == "ABANDONED" for i, t in experiment.trials.items() if i not in scheduler.trials)
    df = experiment.lookup_data().df
    assert sorted(df["trial_index"]) == launched  # one value per trial, none counted twice
    for _, row in df.iterrows():
        p = experiment.trials[int(row.trial_index)].arm.parameters
        assert row["mean"] == 2 * p["x"] + p["y"]
    runs = Counter(int(line.split()[0]) for line in runs_log.read_text().splitlines())
    assert runs == Counter(launched), f"executions per trial: {dict(runs)}"


def run_kill_resume(tmp_path: Path, runner: str, kill_points: list[tuple[int, float]]) -> None:
    runs_log = tmp_path / "runs.log"
    env = {**os.environ, "RUNS_LOG": str(runs_log)}
    root = tmp_path / "jobs"
    state_dir = root / "killed"
    first = controller("start", root, runner, env)
    kill_when(state_dir, first, *kill_points[0])
    for at_trials, delay in kill_points[1:]:
        again = controller("resume", state_dir, runner, env)
        kill_when(state_dir, again, at_trials, delay)
    final = controller("resume", state_dir, runner, env)
    out, err = final.communicate(timeout=240)
    assert final.returncode == 0, err[-2000:]
    assert out.strip().endswith(f"done {TOTAL}")
    check_campaign(state_dir, runs_log)


#: (saved trials to wait for, extra delay in s) per kill: right at a save, mid-trial, between waves
JOBLIB_KILLS = [
    [(1, 0.0)],
    [(3, 0.3)],
    [(2, 0.0), (5, 0.1)],
    [(3, 0.05), (6, 0.4), (7, 0.0)],
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kill_points", JOBLIB_KILLS, ids=lambda k: "+".join(f"{a}@{d}" for a, d in k))
def test_kill_and_resume_on_joblib(tmp_path, kill_points):
    run_kill_resume(tmp_path, "joblib", kill_points)


SLURM_KILLS = [
    [(2, 0.2)],
    [(3, 0.0), (6, 0.3)],
]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("kill_points", SLURM_KILLS, ids=lambda k: "+".join(f"{a}@{d}" for a, d in k))
def test_kill_and_resume_on_slurm(tmp_path, kill_points):
    from aid2e_psij.testing import require_slurm

    require_slurm()
    run_kill_resume(tmp_path, "slurm:debug", kill_points)


@pytest.mark.timeout(300)
def test_cli_status_and_resume_after_a_kill(tmp_path):
    """`aid2e status` and `aid2e resume` on a campaign left behind by a killed controller."""
    runs_log = tmp_path / "runs.log"
    env = {**os.environ, "RUNS_LOG": str(runs_log)}
    root = tmp_path / "jobs"
    state_dir = root / "killed"
    first = controller("start", root, "joblib", env)
    kill_when(state_dir, first, 4, 0.1)
    aid2e_cli = [sys.executable, "-m", "aid2e"]
    status = subprocess.run([*aid2e_cli, "status", str(state_dir)], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stderr
    assert "RUNNING" in status.stdout or "COMPLETED" in status.stdout
    saved = len(json.loads((state_dir / "trials.json").read_text())["scheduler"]["trials"])
    resumed = subprocess.run([*aid2e_cli, "resume", str(state_dir), "--max-trials", str(TOTAL - saved),
                              "--monitoring-interval", "0.5"], capture_output=True, text=True, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{TOTAL} completed" in resumed.stdout.splitlines()[-1]
    check_campaign(state_dir, runs_log)
    final = subprocess.run([*aid2e_cli, "status", str(state_dir), "--json"], capture_output=True, text=True, env=env)
    assert final.returncode == 0
    assert final.stdout.count('"COMPLETED"') >= TOTAL


LEFT_BEHIND = """
import sys, time, warnings
warnings.simplefilter("ignore")
from aid2e import AxScheduler, JobLibRunner
from ax import Client, RangeParameterConfig
from aid2e.testing.experiments import sobol_generation_strategy

def slow(x):
    time.sleep(60)
    return {"objective": x}

client = Client()
client.configure_experiment(name="left", parameters=[RangeParameterConfig(name="x", parameter_type="float",
                                                                          bounds=(0.0, 1.0))])
client.configure_optimization(objective="-objective")
client.set_generation_strategy(sobol_generation_strategy())
scheduler = AxScheduler(client, JobLibRunner(n_jobs=3), {"job_output_dir": sys.argv[1]})
scheduler.set_objective_function(slow)
print("running", flush=True)
scheduler.run_optimization(max_trials=3)
"""


def tagged_processes(tag: str) -> list[int]:
    """Processes whose environment carries ``tag`` (the controller and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "environ").read_bytes():
                    stat = (entry / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.timeout(120)
def test_nothing_of_a_killed_controller_stays_behind(tmp_path):
    """Worker pools exit with their controller: after a SIGKILL only jobs may remain, and a
    function objective has none (its work dies with its worker)."""
    tag = f"AID2E_LEFT_BEHIND_{os.getpid()}_{time.time_ns()}"
    script = tmp_path / "controller.py"
    script.write_text(LEFT_BEHIND)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "jobs")], env={**os.environ, tag: "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "running"
    deadline = time.time() + 30
    while len(tagged_processes(tag)) < 4 and time.time() < deadline:  # controller + 3 loky workers
        time.sleep(0.1)
    before = tagged_processes(tag)
    assert len(before) >= 4, f"expected the controller and its workers, found {before}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while tagged_processes(tag) and time.time() < deadline:
        time.sleep(0.1)
    assert tagged_processes(tag) == [], f"left behind: {tagged_processes(tag)} (before the kill: {before})"


def test_resume_restores_an_importable_function_and_names_a_lost_one(make_ax_client, threads, config):
    from aid2e.testing.conformance import objective_dict_style  # importable by module path

    first = aid2e.AxScheduler(make_ax_client("resume_fn"), threads, config)
    first.set_objective_function(objective_dict_style)
    first.run_optimization(max_trials=2)
    again = aid2e.AxScheduler.resume(str(first.experiment_dir))
    again.run_optimization(max_trials=2)
    df = again.experiment.lookup_data().df
    assert len(df) == 4
    for _, row in df.iterrows():
        p = again.experiment.trials[int(row.trial_index)].arm.parameters
        assert row["mean"] == p["x"] - p["y"]

    lost = aid2e.AxScheduler(make_ax_client("resume_lambda"), threads, config)
    lost.set_objective_function(lambda x, y: {"objective": x})
    lost.run_optimization(max_trials=1)
    restored = aid2e.AxScheduler.resume(str(lost.experiment_dir), threads)
    with pytest.raises(aid2e.ConfigError, match=r"saved objective cannot be restored .* set_objective_function"):
        restored.run_optimization(max_trials=1)
    restored.set_objective_function(lambda x, y: {"objective": x})
    restored.run_optimization(max_trials=1)
    assert len(restored.experiment.trials) == 2
