"""Ctrl-C and SIGTERM during a run, with real signals sent to this process.

First Ctrl-C: nothing more is launched, the state is saved, jobs that outlive the controller
(scripts) are left running and a resumed scheduler collects them; function jobs (which die with
the controller) are waited for. Second Ctrl-C: the running jobs are canceled. SIGTERM (a batch
system's walltime warning): like the first Ctrl-C, but function jobs are stopped and run again on
resume. Every case ends with a CampaignInterrupted naming the state directory and how to resume.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import aid2e
from aid2e.errors import CampaignInterrupted

SCRIPT = """\
import json, os, time
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(os.environ["AID2E_TRIAL_INDEX"] + "\\n")
time.sleep(float(os.environ.get("SLEEP", "2")))
json.dump({"objective": p["x"] + p["y"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def signal_when(condition, *signals_to_send, gap=0.3, timeout=30.0):
    """Send ``signals_to_send`` to this process (``gap`` s apart) once ``condition()`` holds."""
    sent: list[float] = []

    def run():
        deadline = time.time() + timeout
        while not condition() and time.time() < deadline:
            time.sleep(0.02)
        for signum in signals_to_send:
            sent.append(time.time())
            os.kill(os.getpid(), signum)
            time.sleep(gap)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return sent


def runs(log: Path) -> Counter:
    return Counter(int(line) for line in log.read_text().split()) if log.exists() else Counter()


def function_campaign(make_ax_client, runner, config, name, seconds):
    """A scheduler (2 in flight) whose function objective sleeps ``seconds``; ``started`` lists
    the calls that began."""
    started = []

    def slow(x, y):
        started.append(x)
        time.sleep(seconds)
        return {"objective": x + y}

    scheduler = aid2e.AxScheduler(make_ax_client(name), runner, {**config, "max_parallel_trials": 2})
    scheduler.set_objective_function(slow)
    return scheduler, slow, started


@pytest.fixture
def script_campaign(make_ax_client, tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    monkeypatch.setenv("RUNS_LOG", str(log))
    script = tmp_path / "objective.py"
    script.write_text(SCRIPT)
    return script, log


def test_first_ctrl_c_leaves_script_jobs_running_and_resume_collects_them(
        make_ax_client, script_campaign, config):
    from aid2e_joblib import JobLibRunner

    script, log = script_campaign
    runner = JobLibRunner(n_jobs=2, pool="threading")
    scheduler = aid2e.AxScheduler(make_ax_client("ctrl_c_scripts"), runner, config)
    scheduler.set_script_objective(str(script))
    sent = signal_when(lambda: sum(runs(log).values()) == 2, signal.SIGINT)
    with pytest.raises(CampaignInterrupted) as caught:
        scheduler.run_optimization(max_trials=6)
    returned_after = time.time() - sent[0]
    message = str(caught.value)
    assert returned_after < 1.5, f"Ctrl-C took {returned_after:.1f} s to return"
    assert "2 trial(s) left running as jobs" in message and "aid2e resume" in message
    assert str(scheduler.experiment_dir) in message
    runner.close()

    saved = json.loads((scheduler.experiment_dir / "trials.json").read_text())["scheduler"]["trials"]
    assert [(t["status"], bool(t["handle"])) for t in saved] == [("RUNNING", True)] * 2
    assert len(scheduler.trials) == 2  # nothing launched after the Ctrl-C
    unlaunched = [t for i, t in scheduler.experiment.trials.items() if i not in scheduler.trials]
    assert all(t.status.name == "ABANDONED" for t in unlaunched)  # candidates generated ahead

    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), JobLibRunner(n_jobs=2, pool="threading"))
    resumed.run_optimization(max_trials=1)
    assert sorted(resumed.trials) == [0, 1, resumed_index := max(resumed.trials)]
    assert all(resumed.experiment.trials[i].status.name == "COMPLETED" for i in resumed.trials)
    assert runs(log) == Counter({0: 1, 1: 1, resumed_index: 1})  # the left jobs were followed, not run again


def test_first_ctrl_c_waits_for_function_jobs(make_ax_client, threads, config):
    scheduler, _, started = function_campaign(make_ax_client, threads, config, "ctrl_c_functions", 1.0)
    signal_when(lambda: len(started) == 2, signal.SIGINT)
    with pytest.raises(CampaignInterrupted) as caught:
        scheduler.run_optimization(max_trials=6)
    assert "2 trial(s) that could not be left were waited for" in str(caught.value)
    assert [scheduler.experiment.trials[i].status.name for i in scheduler.trials] == ["COMPLETED"] * 2


def test_second_ctrl_c_cancels_the_running_jobs(make_ax_client, threads, config):
    scheduler, _, started = function_campaign(make_ax_client, threads, config, "ctrl_c_twice", 3.0)
    sent = signal_when(lambda: len(started) == 2, signal.SIGINT, signal.SIGINT)
    with pytest.raises(CampaignInterrupted) as caught:
        scheduler.run_optimization(max_trials=6)
    assert time.time() - sent[-1] < 1.5
    assert "2 running trial(s) canceled" in str(caught.value)
    trials = [scheduler.experiment.trials[i] for i in scheduler.trials]
    assert [t.status.name for t in trials] == ["ABANDONED"] * 2
    assert all("second Ctrl-C" in t.status_reason for t in trials)


def test_second_ctrl_c_at_a_terminal_cancels_the_scripts_left_running(
        make_ax_client, script_campaign, config, monkeypatch):
    """At a terminal the first Ctrl-C offers a moment for a second one, which cancels the jobs."""
    from aid2e_joblib import JobLibRunner

    monkeypatch.setattr("aid2e.loop.second_press_grace", lambda: 5.0)
    monkeypatch.setenv("SLEEP", "30")
    script, log = script_campaign
    with JobLibRunner(n_jobs=2, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("ctrl_c_terminal"), runner, config)
        scheduler.set_script_objective(str(script))
        signal_when(lambda: sum(runs(log).values()) == 2, signal.SIGINT, signal.SIGINT, gap=0.5)
        with pytest.raises(CampaignInterrupted, match="2 running trial"):
            scheduler.run_optimization(max_trials=6)
        pids = [int(r.handle.native_id) for r in scheduler.trials.values()]
    assert [scheduler.experiment.trials[i].status.name for i in scheduler.trials] == ["ABANDONED"] * 2
    for pid in pids:  # the scripts' launchers are gone
        deadline = time.time() + 5
        while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_sigterm_leaves_scripts_and_reruns_functions_on_resume(make_ax_client, threads, config):
    scheduler, slow, started = function_campaign(make_ax_client, threads, config, "sigterm", 1.0)
    signal_when(lambda: len(started) == 2, signal.SIGTERM)
    with pytest.raises(CampaignInterrupted, match="SIGTERM: .*2 function trial"):
        scheduler.run_optimization(max_trials=6)
    saved = json.loads((scheduler.experiment_dir / "trials.json").read_text())["scheduler"]["trials"]
    assert [(t["status"], t["handle"]) for t in saved] == [("RUNNING", None)] * 2  # to be submitted again

    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), threads)
    resumed.set_objective_function(slow)
    resumed.run_optimization(max_trials=0)
    assert [resumed.experiment.trials[i].status.name for i in resumed.trials] == ["COMPLETED"] * 2
    df = resumed.experiment.lookup_data().df
    assert sorted(df["trial_index"]) == [0, 1]


def test_aid2e_resume_command_exits_130_on_ctrl_c_saying_how_to_resume(make_ax_client, script_campaign, config):
    import subprocess
    import sys

    from aid2e_joblib import JobLibRunner

    script, log = script_campaign
    with JobLibRunner(n_jobs=2, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("cli_ctrl_c"), runner, {**config, "monitoring_interval": 0.5})
        scheduler.set_script_objective(str(script))
        scheduler.run_optimization(max_trials=1)
    where = str(scheduler.experiment_dir)
    env = {**os.environ, "SLEEP": "3"}
    cli = subprocess.Popen([sys.executable, "-m", "aid2e", "resume", where, "--max-trials", "4"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while sum(runs(log).values()) < 3 and time.time() < deadline:
        time.sleep(0.02)
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=20)
    assert cli.returncode == 130, err
    assert "2 trial(s) left running as jobs" in err and f"aid2e resume {where}" in err, err
    assert "Traceback" not in err

    finish = subprocess.run([sys.executable, "-m", "aid2e", "resume", where, "--max-trials", "1"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert finish.stdout.splitlines()[-1].startswith("4 completed, 0 failed")
    saved = json.loads((Path(where) / "trials.json").read_text())["scheduler"]["trials"]
    # each launched trial ran exactly once: the ones left running were followed, not run again
    assert runs(log) == Counter(t["index"] for t in saved)


def test_ctrl_c_in_a_batch_abandons_the_batch_trials_not_yet_launched(make_ax_client, threads, config):
    scheduler, _, started = function_campaign(make_ax_client, threads, config, "ctrl_c_batch", 0.5)
    signal_when(lambda: len(started) == 2, signal.SIGINT)
    with pytest.raises(CampaignInterrupted):
        with scheduler.batch_trial_context() as batch:
            for i in range(5):
                batch.add_trial({"x": i / 10, "y": 0.5})
    statuses = [t.status.name for t in scheduler.experiment.trials.values()]
    assert statuses == ["COMPLETED"] * 2 + ["ABANDONED"] * 3
    assert all("not launched: Ctrl-C" in scheduler.experiment.trials[i].status_reason for i in (2, 3, 4))


def test_sigterm_says_function_threads_were_given_up_not_stopped(make_ax_client, threads, config):
    """A thread cannot be stopped: the message must not claim it was."""
    scheduler, _, started = function_campaign(make_ax_client, threads, config, "sigterm_threads", 1.0)
    signal_when(lambda: len(started) == 2, signal.SIGTERM)
    with pytest.raises(CampaignInterrupted) as caught:
        scheduler.run_optimization(max_trials=6)
    message = str(caught.value)
    assert "2 function trial(s) given up but not stopped" in message and "stopped; they run" not in message
