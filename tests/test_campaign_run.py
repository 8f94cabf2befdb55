"""``aid2e run FILE`` as a user runs it (a subprocess, local cores): the campaign directory with
the file's frozen copy, exact values from a staged trial, a single-job trial, a second run
refused in favour of resume, resume continuing the file's campaign (functions imported from next
to the file), and the problems that stop a run before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aid2e

SIMULATE = """\
import json, os, sys
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
assert job["fan_out"] == {"particle": sys.argv[1], "eta": float(sys.argv[2])}
value = p["thickness"] * float(sys.argv[2]) + (1.0 if sys.argv[1] == "pi+" else 2.0) * p["focus"]
json.dump({"value": value}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""

UTILS = """\
def merge(thickness, focus, gap, mirror, inputs):
    values = [job["result"]["value"] for job in inputs["simulate"]]
    return {"sep": (sum(values) / len(values), 0.01), "acc": thickness + gap}
"""

CAMPAIGN = """\
name: toy
output_dir: ./campaigns
parameters:
  thickness: {bounds: [1.0, 4.0]}
  focus: {bounds: [-1.0, 1.0]}
  gap: {value: 2.5}
  mirror: {choices: [spherical, parabolic]}
objectives:
  sep: {direction: maximize, threshold: 1.0}
  acc: {direction: minimize, threshold: 10.0}
optimizer: {initial_trials: 4, method: sobol, seed: 3}
max_trials: 5
max_parallel_trials: 3
backends:
  local: {type: joblib, n_jobs: 4}
trial:
  backend: local
  stages:
    - name: simulate
      fan_out: {particle: [pi+, kaon+], eta: [1.5, 2.5]}
      script: [python3, simulate.py, "{particle}", "{eta}"]
    - {name: merge, function: "toy_utils_run:merge"}
failure: {max_retries: 1, trial_timeout: 600}
scheduler: {monitoring_interval: 1}
"""


def aid2e_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "aid2e", *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "simulate.py").write_text(SIMULATE)
    (tmp_path / "toy_utils_run.py").write_text(UTILS)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    return tmp_path


def check_toy(where: Path, trials: int) -> None:
    scheduler = aid2e.AxScheduler.resume(str(where))
    assert len(scheduler.trials) == trials
    for record in scheduler.trials.values():
        p = record.parameters
        assert record.status == "COMPLETED", record.message
        values = [p["thickness"] * eta + k * p["focus"] for k in (1.0, 2.0) for eta in (1.5, 2.5)]
        assert record.metrics["sep"].mean == pytest.approx(sum(values) / 4, rel=1e-12)
        assert record.metrics["sep"].sem == 0.01 and record.metrics["acc"].mean == p["thickness"] + 2.5
        assert p["gap"] == 2.5 and p["mirror"] in ("spherical", "parabolic")
        assert len(record.jobs) == 5


@pytest.mark.timeout(600)
def test_run_then_resume_a_campaign_file(folder):
    done = aid2e_cli("run", "campaign.yaml", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    where = folder / "campaigns" / "toy"
    assert f"running {where}: 5 trials" in done.stdout and "5 completed, 0 failed" in done.stdout
    ended = [line for line in done.stderr.splitlines() if " trial " in line and " COMPLETED: sep=" in line]
    assert len(ended) == 5 and all(" +- 0.01, acc=" in line and " in " in line for line in ended)  # a log line each
    assert (where / "campaign.yaml").read_text() == CAMPAIGN  # the campaign's frozen definition
    assert json.loads((where / "aid2e_campaign_source.json").read_text()) == {
        "file": str(folder / "campaign.yaml"), "dir": str(folder), "max_trials": 5}
    assert "[INFO" not in done.stderr  # Ax's own INFO lines are kept quiet (aid2e -v shows them)
    check_toy(where, 5)

    again = aid2e_cli("run", "campaign.yaml", cwd=folder)
    assert again.returncode == 2 and again.stderr == (
        f"campaign.yaml: name: {where} already holds the campaign 'toy': continue it with aid2e resume {where}, "
        "or give this campaign another name or output_dir\n")

    resumed = aid2e_cli("resume", str(where), "--max-trials", "2", cwd=folder.parent)  # from elsewhere
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_toy(where, 7)


@pytest.mark.timeout(300)
def test_a_single_job_trial_and_max_trials_from_the_command_line(folder):
    (folder / "objective.py").write_text(
        "import json, os\np = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
        "json.dump({'loss': (p['x'] - 0.25) ** 2}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    (folder / "single.yaml").write_text(
        "name: single\nparameters: {x: {bounds: [0.0, 1.0]}}\nobjectives: {loss: {direction: minimize}}\n"
        "optimizer: {method: sobol, seed: 1}\ntrial: {script: objective.py}\n")
    done = aid2e_cli("run", "single.yaml", "--max-trials", "3", "--output-dir", "scratch", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    where = folder / "scratch" / "single"  # --output-dir is relative to where aid2e runs, not to the file
    scheduler = aid2e.AxScheduler.resume(str(where))
    assert [(r.status, list(r.jobs)) for r in scheduler.trials.values()] == [("COMPLETED", ["trial/job"])] * 3
    for record in scheduler.trials.values():
        assert record.metrics["loss"].mean == (record.parameters["x"] - 0.25) ** 2
    best = min(scheduler.trials.values(), key=lambda r: r.metrics["loss"].mean)
    assert done.stdout.splitlines()[-1].startswith(
        f"3 completed, 0 failed, 0 abandoned, 0 running; best: trial {best.index}, "
        f"loss={best.metrics['loss'].mean:.6g} (x=")
    assert not (folder / "aid2e_jobs").exists()
    resumed = aid2e_cli("resume", str(where), cwd=folder)  # the run asked for 3: nothing is left to launch
    assert resumed.returncode == 0 and "3 trials saved, 0 in flight; 0 new" in resumed.stdout, resumed.stderr


@pytest.mark.parametrize("change, words", [
    (lambda text: text.replace("max_trials: 5\n", ""), "campaign.yaml: max_trials: give max_trials in the file or "
                                                       "--max-trials N"),
    (lambda text: text.replace("direction: minimize", "direction: lowest"),
     "campaign.yaml: objectives.acc.direction: must be one of minimize, maximize, got 'lowest'"),
])
def test_a_file_that_cannot_run_stops_before_anything_starts(folder, change, words):
    (folder / "campaign.yaml").write_text(change(CAMPAIGN))
    done = aid2e_cli("run", "campaign.yaml", cwd=folder)
    assert done.returncode == 2 and done.stderr == words + "\n" and done.stdout == ""
    assert not (folder / "campaigns").exists()


@pytest.mark.timeout(600)
def test_init_then_run_in_an_empty_directory(tmp_path):
    done = aid2e_cli("init", "fresh", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where = tmp_path / "fresh"
    assert sorted(p.name for p in where.iterdir()) == ["campaign.yaml", "simulate.py", "starter_analysis.py"]
    ran = aid2e_cli("run", "fresh/campaign.yaml", "--max-trials", "4", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    scheduler = aid2e.AxScheduler.resume(str(where / "aid2e_jobs" / "starter"))
    assert [r.status for r in scheduler.trials.values()] == ["COMPLETED"] * 4
    for record in scheduler.trials.values():
        assert record.metrics["cost"].mean == record.parameters["thickness"] * record.parameters["layers"]
    again = aid2e_cli("init", "fresh", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "aid2e init never overwrites" in again.stderr


SLOW_SIMULATE = """\
import json, os, sys, time
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
with open(sys.argv[3], "a") as log:
    log.write(f"{job['trial']} {job['stage']} {job['job']}\\n")
time.sleep(1.0)
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
value = p["thickness"] * float(sys.argv[2]) + (1.0 if sys.argv[1] == "pi+" else 2.0) * p["focus"]
json.dump({"value": value}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


@pytest.mark.timeout(600)
def test_sigkill_of_aid2e_run_then_aid2e_resume_finishes_the_campaign(folder):
    """No trial lost, no job run twice (counted by the jobs), exact values; ``aid2e resume DIR``
    without --max-trials goes on to the file's max_trials."""
    import signal
    import time
    from collections import Counter

    runs = folder / "runs.log"
    (folder / "simulate.py").write_text(SLOW_SIMULATE)
    (folder / "campaign.yaml").write_text(CAMPAIGN.replace('"{eta}"]', f'"{{eta}}", {str(runs)!r}]'))
    proc = subprocess.Popen([sys.executable, "-m", "aid2e", "run", "campaign.yaml"], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if runs.exists() and len(runs.read_text().splitlines()) >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    where = folder / "campaigns" / "toy"
    resumed = aid2e_cli("resume", str(where), cwd=folder.parent)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_toy(where, 5)
    counted = Counter(runs.read_text().splitlines())
    assert len(counted) == 5 * 4 and set(counted.values()) == {1}


@pytest.mark.timeout(300)
def test_a_campaign_stopped_by_max_failed_trials_exits_1_with_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("import sys\nsys.exit('the geometry does not build')\n")
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nparameters: {x: {bounds: [0.0, 1.0]}}\nobjectives: {loss: {direction: minimize}}\n"
        "optimizer: {method: sobol}\nmax_trials: 10\nmax_parallel_trials: 1\n"
        "trial: {script: [python3, broken.py]}\nfailure: {max_failed_trials: 2}\n")
    done = aid2e_cli("run", "broken.yaml", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("aid2e: error:")]
    assert errors == [errors[0]] and "3 trials failed and 0 were penalized, more than max_failed_trials=2" in errors[0]
    assert "the geometry does not build" in errors[0] and "Traceback" not in done.stderr
    ended = [line.split(" ", 2)[2] for line in done.stderr.splitlines() if " FAILED: " in line]
    assert [line.split(":")[0] for line in ended] == [f"trial {i} FAILED" for i in range(3)]  # one line each
    assert all("the geometry does not build" in line for line in ended)
    assert " failed: " not in done.stderr  # no second report of the same trial


def podman_image() -> str:
    """The test image that scripts/services/containers.sh built; skips (or fails where promised) without podman."""
    from test_containers_on_slurm import STATE_FILE

    from aid2e.testing.requirements import require

    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        state = {}
    require("podman", state.get("podman") == "ok", f"podman is not usable here: {state.get('podman', 'no state')}")
    return state.get("image", "localhost/aid2e-test:latest")


@pytest.mark.timeout(300)
def test_a_single_container_trial_from_a_file(tmp_path):
    """trial: {container: ...} with the containers plugin's options (engine) on podman."""
    from test_containers_on_slurm import SUM_AWK

    image = podman_image()
    command = ["awk", SUM_AWK.replace("{", "{{").replace("}", "}}"), "params.json"]  # {{ }}: literal braces
    (tmp_path / "boxed.yaml").write_text(json.dumps({  # JSON is YAML too
        "name": "boxed", "parameters": {"x": {"bounds": [0.0, 1.0]}, "y": {"bounds": [0.0, 1.0]}},
        "objectives": {"objective": {"direction": "minimize"}}, "optimizer": {"method": "sobol", "seed": 2},
        "trial": {"container": {"image": image, "engine": "podman", "command": command}}}))
    done = aid2e_cli("validate", "boxed.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = aid2e_cli("run", "boxed.yaml", "--max-trials", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    scheduler = aid2e.AxScheduler.resume(str(tmp_path / "aid2e_jobs" / "boxed"))
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        assert record.metrics["objective"].mean == record.parameters["x"] + record.parameters["y"]
        assert record.jobs["trial/job"].handle.extra["container_image"] == image


@pytest.mark.timeout(300)
def test_container_binds_are_relative_to_the_campaign_file(tmp_path):
    """A bind's relative host path is relative to the file, as its scripts are, whatever the
    directory aid2e runs in; validate names a bind whose host path does not exist."""
    image = podman_image()
    folder = tmp_path / "campaign"
    (folder / "sim").mkdir(parents=True)
    (folder / "sim" / "run.sh").write_text('echo \'{"objective": 0.25}\' > "$AID2E_RESULT_FILE"\n')
    campaign = {"name": "bound", "parameters": {"x": {"bounds": [0.0, 1.0]}},
                "objectives": {"objective": {"direction": "minimize"}}, "optimizer": {"method": "sobol", "seed": 2},
                "trial": {"container": {"image": image, "engine": "podman", "command": ["sh", "/sim/run.sh"],
                                        "binds": {"./sim": "/sim:ro"}}}}
    (folder / "bound.yaml").write_text(json.dumps(campaign))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = aid2e_cli("validate", str(folder / "bound.yaml"), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    done = aid2e_cli("run", str(folder / "bound.yaml"), "--max-trials", "1", cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = aid2e.AxScheduler.resume(str(folder / "aid2e_jobs" / "bound")).trials.values()
    assert record.status == "COMPLETED", record.message
    assert record.metrics["objective"].mean == 0.25

    campaign["trial"]["container"]["binds"] = [f"{folder / 'sim'}:/sim:ro", "./geometry:/geometry"]
    (folder / "bad.yaml").write_text(json.dumps(campaign))
    done = aid2e_cli("validate", str(folder / "bad.yaml"), cwd=elsewhere)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"{folder / 'bad.yaml'}: trial.container.binds: {folder / 'geometry'} does not "
                                   "exist (a relative path is relative to the campaign file)")


@pytest.mark.parametrize("args, line", [
    (["--max-trials", "-1"], "aid2e run: error: argument --max-trials: must be 0 or more, got -1"),
    (["--max-trials", "ten"], "aid2e run: error: argument --max-trials: must be a whole number of trials, got 'ten'"),
    (["--output-dir", "/etc/hostname"],
     "campaign.yaml: --output-dir: cannot create /etc/hostname/toy: Not a directory"),
    (["--output-dir", "/proc/aid2e"], "campaign.yaml: --output-dir: cannot create /proc/aid2e/toy: No such file or "
                                      "directory"),
])
def test_bad_run_arguments_stop_before_anything_starts(folder, args, line):
    done = aid2e_cli("run", "campaign.yaml", *args, cwd=folder)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == line and done.stdout == "", done.stderr
    assert "Traceback" not in done.stderr and not (folder / "campaigns").exists()


def test_the_final_line_names_the_pareto_set_aid2e_status_and_the_report_name(tmp_path):
    """With several objectives the last line's Pareto set is the one ``aid2e status --pareto`` and the
    report compute (every non-dominated trial). It was Ax's, which leaves out trials outside the
    objective thresholds: here none is inside them, and the line said 'no trial completed'."""
    (tmp_path / "two.py").write_text(
        "import json, os\np = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
        "json.dump({'a': p['x'], 'b': 1 - p['x'] ** 2}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    (tmp_path / "two.yaml").write_text(
        "name: two\nparameters: {x: {bounds: [0.0, 1.0]}}\n"
        "objectives: {a: {direction: maximize, threshold: 5.0}, b: {direction: maximize, threshold: 5.0}}\n"
        "optimizer: {method: sobol, seed: 1}\ntrial: {script: two.py}\n")
    done = aid2e_cli("run", "two.yaml", "--max-trials", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    where = tmp_path / "aid2e_jobs" / "two"
    front = aid2e_cli("status", str(where), "--pareto", "--json", cwd=tmp_path)
    indices = sorted(t["index"] for t in json.loads(front.stdout)["trials"])
    assert len(indices) == 3          # a rises with x, b falls: no trial beats another
    assert done.stdout.splitlines()[-1] == (
        f"3 completed, 0 failed, 0 abandoned, 0 running; Pareto set: trials {', '.join(map(str, indices))} "
        f"(aid2e status {where} --pareto shows their metrics)")


@pytest.mark.parametrize("args, line", [
    (["--tolerated-failure-rate", "2"], "aid2e resume: error: argument --tolerated-failure-rate: must be from 0 to 1, "
                                        "got 2"),
    (["--tolerated-failure-rate", "half"], "aid2e resume: error: argument --tolerated-failure-rate: must be a number "
                                           "from 0 to 1, got 'half'"),
    (["--max-failed-trials", "-3"], "aid2e resume: error: argument --max-failed-trials: must be 0 or more, got -3"),
])
def test_bad_resume_limits_are_one_line(tmp_path, args, line):
    done = aid2e_cli("resume", str(tmp_path), *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == line, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(300)
def test_resume_with_raised_failure_limits_goes_on_after_a_limit_stop(tmp_path):
    """A campaign stopped by max_failed_trials stops again at once on a plain resume (the earlier
    failures count); --max-failed-trials raises the saved limit, and the campaign goes on."""
    (tmp_path / "half.py").write_text(
        "import json, os, sys\np = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
        "sys.exit('too thick') if p['x'] > 0.5 else json.dump({'loss': p['x']}, open(os.environ['AID2E_RESULT_FILE'], "
        "'w'))\n")
    (tmp_path / "strict.yaml").write_text(
        "name: strict\nparameters: {x: {bounds: [0.0, 1.0]}}\nobjectives: {loss: {direction: minimize}}\n"
        "optimizer: {method: sobol, seed: 3}\nmax_trials: 12\nmax_parallel_trials: 1\ntrial: {script: half.py}\n"
        "failure: {max_failed_trials: 0}\n")
    stopped = aid2e_cli("run", "strict.yaml", cwd=tmp_path)
    assert stopped.returncode == 1 and "more than max_failed_trials=0" in stopped.stderr, stopped.stderr
    where = str(tmp_path / "aid2e_jobs" / "strict")
    saved = len(aid2e.AxScheduler.resume(where).trials)
    again = aid2e_cli("resume", where, "--max-trials", "3", cwd=tmp_path)
    assert again.returncode == 1 and "more than max_failed_trials=0" in again.stderr, again.stderr
    raised = aid2e_cli("resume", where, "--max-trials", "3", "--max-failed-trials", "50", cwd=tmp_path)
    assert raised.returncode == 0, raised.stderr[-2000:]
    scheduler = aid2e.AxScheduler.resume(where)
    assert len(scheduler.trials) >= saved + 3
    assert scheduler.config.max_failed_trials == 50       # the raised limit is the campaign's from now on
