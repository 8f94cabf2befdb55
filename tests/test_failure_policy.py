"""Failure policy: retries after infrastructure failures, trial_timeout, infeasible designs."""

from __future__ import annotations

import textwrap
import time

import pytest

import aid2e
from aid2e.testing.conformance import still_running


def script(tmp_path, body, name="objective.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


KILLS_ITS_LAUNCHER_ONCE = """
    import json, os, signal, time
    p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
    marker = os.path.join(os.environ["MARKERS"], "trial_" + os.environ["AID2E_TRIAL_INDEX"])
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getppid(), signal.SIGKILL)   # the job's launcher vanishes, as on a lost node
        time.sleep(1.0)                         # ... but this attempt was only cut off: it comes back
        json.dump({"objective": -1.0}, open(os.environ["AID2E_RESULT_FILE"], "w"))
        open(marker + ".late", "w").write(os.environ["AID2E_RESULT_FILE"])
        raise SystemExit(0)
    time.sleep(2.0)
    json.dump({"objective": p["x"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


@pytest.fixture
def markers(tmp_path, monkeypatch):
    path = tmp_path / "markers"
    path.mkdir()
    monkeypatch.setenv("MARKERS", str(path))  # jobs inherit the environment
    return path


def test_vanished_job_is_retried_with_max_retries(make_ax_client, threads, config, tmp_path, markers):
    scheduler = aid2e.AxScheduler(make_ax_client("retry"), threads, {**config, "max_retries": 1})
    scheduler.set_script_objective(str(script(tmp_path, KILLS_ITS_LAUNCHER_ONCE)))
    scheduler.run_optimization(max_trials=2)
    for index, trial in scheduler.experiment.trials.items():
        assert trial.status.name == "COMPLETED"
        assert scheduler.trials[index].attempts == 2
        assert "ended without recording an exit status" in scheduler.trials[index].message
    df = scheduler.experiment.lookup_data().df
    assert {int(r.trial_index): r["mean"] for _, r in df.iterrows()} == {
        i: t.arm.parameters["x"] for i, t in scheduler.experiment.trials.items()}
    for index, record in scheduler.trials.items():  # the retry ran apart from the lost attempt
        assert record.handle.workdir == str(scheduler.trial_dir(index) / "attempt_2")
        late_marker = markers / f"trial_{index}.late"
        deadline = time.monotonic() + 60  # the cut-off attempt is not awaited by anyone: wait for it here
        while not (late_marker.exists() and late_marker.read_text()):
            assert time.monotonic() < deadline, "the cut-off attempt never made its late write"
            time.sleep(0.05)
        late = late_marker.read_text()
        assert late == str(scheduler.trial_dir(index) / "result.json")  # its late write stayed there


def test_vanished_job_fails_without_retries(make_ax_client, threads, config, tmp_path, markers):
    scheduler = aid2e.AxScheduler(make_ax_client("no_retry"), threads, {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script(tmp_path, KILLS_ITS_LAUNCHER_ONCE)))
    scheduler.run_optimization(max_trials=1)
    trial = scheduler.experiment.trials[0]
    assert trial.status.name == "FAILED" and "ended without recording an exit status" in trial.status_reason


def test_a_scripts_own_failure_is_not_retried(make_ax_client, threads, config, tmp_path):
    scheduler = aid2e.AxScheduler(make_ax_client("own_failure"), threads,
                                  {**config, "max_retries": 3, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script(tmp_path, "import sys; sys.exit(4)\n")))
    scheduler.run_optimization(max_trials=1)
    assert scheduler.trials[0].attempts == 1
    assert "exited with code 4" in scheduler.experiment.trials[0].status_reason


@pytest.mark.timeout(60)
def test_trial_timeout_cancels_and_fails(make_ax_client, threads, config, tmp_path):
    scheduler = aid2e.AxScheduler(make_ax_client("timeout"), threads,
                                  {**config, "trial_timeout": 1, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script(tmp_path, "import time; time.sleep(300)\n")))
    scheduler.run_optimization(max_trials=2)
    for trial in scheduler.experiment.trials.values():
        assert trial.status.name == "FAILED"
        assert "exceeded trial_timeout=1 s and was canceled" in trial.status_reason


def test_infeasible_designs_are_abandoned_not_failed(make_ax_client, threads, config, tmp_path):
    body = """
        import json, os
        p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
        result = {"infeasible": "volumes overlap"} if p["x"] > 0.5 else {"objective": p["x"]}
        json.dump(result, open(os.environ["AID2E_RESULT_FILE"], "w"))
    """
    scheduler = aid2e.AxScheduler(make_ax_client("infeasible"), threads, config)
    scheduler.set_script_objective(str(script(tmp_path, body)))
    scheduler.run_optimization(max_trials=8)
    for trial in scheduler.experiment.trials.values():
        if trial.arm.parameters["x"] > 0.5:
            assert trial.status.name == "ABANDONED" and trial.status_reason == "infeasible: volumes overlap"
        else:
            assert trial.status.name == "COMPLETED"
    assert set(scheduler.experiment.lookup_data().df["trial_index"]) == {
        i for i, t in scheduler.experiment.trials.items() if t.arm.parameters["x"] <= 0.5}


def test_infeasible_from_a_function(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("infeasible_fn"), threads, config)
    scheduler.set_objective_function(lambda x, y: {"infeasible": "overlap"} if y > 0.5 else {"objective": y})
    scheduler.run_optimization(max_trials=6)
    statuses = {t.status.name for t in scheduler.experiment.trials.values()}
    assert statuses <= {"ABANDONED", "COMPLETED"} and "FAILED" not in statuses


@pytest.mark.parametrize("config_update, message", [
    ({"max_retries": -1}, "'max_retries' must be a non-negative integer"),
    ({"trial_timeout": 0}, "'trial_timeout' must be seconds or a duration like '04:00:00', '90s' or '2h', got 0"),
    ({"trial_timeout": "an hour"}, "'trial_timeout' must be seconds or a duration like '04:00:00', '90s' or '2h', "
                                   "got 'an hour'"),
])
def test_bad_policy_config(make_ax_client, threads, config, config_update, message):
    with pytest.raises(aid2e.ConfigError, match=message):
        aid2e.AxScheduler(make_ax_client(), threads, {**config, **config_update})


def test_state_and_trial_directories_are_not_writable_by_others(make_ax_client, threads, config, tmp_path):
    import os
    import stat

    old = os.umask(0)  # the most permissive umask a user could have
    try:
        body = "import json, os; json.dump({'objective': 1.0}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n"
        scheduler = aid2e.AxScheduler(make_ax_client("private"), threads, config)
        scheduler.set_script_objective(str(script(tmp_path, body)))
        scheduler.run_optimization(max_trials=2)
    finally:
        os.umask(old)
    for path in [scheduler.experiment_dir, scheduler.trial_dir(0), scheduler.trial_dir(1)]:
        assert not stat.S_IMODE(path.stat().st_mode) & 0o022, f"{path} is writable by others"
    for state_file in ("trials.json", "experiment.json"):
        assert not stat.S_IMODE((scheduler.experiment_dir / state_file).stat().st_mode) & 0o022


def _hangs_once(markers):
    """An objective for process workers (pickled by value: its module is not importable there)
    whose first call records its worker's pid and never returns; later calls return at once."""
    namespace = {"__name__": "aid2e_test_hangs_once"}
    exec(textwrap.dedent(f"""
        import os, time
        def hangs_once(x, y):
            first = os.path.join({str(markers)!r}, "first")
            try:
                fd = os.open(first, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return {{"objective": x + y}}
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            time.sleep(3600)
    """), namespace)
    return namespace["hangs_once"]


@pytest.mark.timeout(120)
def test_trial_timeout_kills_a_hung_function_and_the_queued_trial_runs_on_a_new_worker(
        make_ax_client, config, markers):
    """One worker, two trials in flight: the second waits behind the hung first one; it is not
    timed while it waits, and runs once the first one's worker is killed."""
    from aid2e_joblib import JobLibRunner

    with JobLibRunner(n_jobs=1, pool="loky") as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("hung_function"), runner, {
            **config, "trial_timeout": 2, "tolerated_failure_rate": 1.0, "max_parallel_trials": 2,
            "monitoring_interval": 0.2})
        scheduler.set_objective_function(_hangs_once(markers))
        scheduler.run_optimization(max_trials=2)
        hung_worker = int((markers / "first").read_text())
        trials = scheduler.experiment.trials
        assert trials[0].status.name == "FAILED"
        assert "exceeded trial_timeout=2 s and was canceled" in trials[0].status_reason
        assert trials[1].status.name == "COMPLETED", trials[1].status_reason
        assert not still_running([hung_worker], 10), "the timed-out trial's worker still runs"


def test_penalty_completes_failed_trials_with_its_values(make_ax_client, threads, config, tmp_path):
    """config 'penalty': a trial whose job fails completes with the penalty (the model learns to
    avoid the region), its record says it was penalized and why; infeasible ones stay abandoned."""
    body = """
        import json, os, sys
        p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
        if os.environ["AID2E_TRIAL_INDEX"] == "1":
            sys.exit("overlapping volumes")
        if os.environ["AID2E_TRIAL_INDEX"] == "2":
            json.dump({"infeasible": "no room"}, open(os.environ["AID2E_RESULT_FILE"], "w")); sys.exit(0)
        json.dump({"objective": p["x"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
    """
    scheduler = aid2e.AxScheduler(make_ax_client("penalty"), threads,
                                  {**config, "failure_policy": "penalty", "penalty": {"objective": 10.0}})
    scheduler.set_script_objective(str(script(tmp_path, body)))
    scheduler.run_optimization(max_trials=3)
    trials = scheduler.experiment.trials
    assert [trials[i].status.name for i in range(3)] == ["COMPLETED", "COMPLETED", "ABANDONED"]
    record = scheduler.trials[1]
    assert record.status == "COMPLETED" and record.penalized and record.metrics["objective"].mean == 10.0
    assert not scheduler.trials[0].penalized and scheduler.book.counts()["PENALIZED"] == 1
    from aid2e.state import read_state

    assert [t.penalized for t in read_state(scheduler.experiment_dir).trials] == [False, True, False]
    assert record.message.startswith("penalized: ") and "overlapping volumes" in record.message
    means = {int(r.trial_index): r["mean"] for _, r in scheduler.experiment.lookup_data().df.iterrows()}
    assert means[1] == 10.0 and means[0] == trials[0].arm.parameters["x"]


@pytest.mark.parametrize("penalty, message", [
    ({"cost": 1.0}, "config 'penalty' lacks objective(s) 'objective'"),
    ({"objective": 1.0, "cost": 2.0}, "config 'penalty' names metric(s) 'cost' the experiment does not have"),
    ({"objective": "high"}, "config 'penalty' 'objective' must be a finite number or [mean, sem]"),
    ({"objective": [1.0, -1.0]}, "config 'penalty' 'objective' must be a finite number or [mean, sem]"),
    ([], "config 'penalty' must be a dict of objective -> value"),
])
def test_a_bad_penalty_is_one_line(make_ax_client, threads, config, penalty, message):
    def objective(x, y):
        return {"objective": x}

    with pytest.raises(aid2e.ConfigError) as info:
        scheduler = aid2e.AxScheduler(make_ax_client("bad_penalty"), threads,
                                      {**config, "failure_policy": "penalty", "penalty": penalty})
        scheduler.set_objective_function(objective)
        scheduler.run_optimization(max_trials=1)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_penalty_without_a_use_is_refused_when_the_run_starts(make_ax_client, threads, config):
    """config 'penalty' with failure_policy "fail" is for workflows whose stages map exit codes to
    "penalty" (tests/test_workflows.py); for anything else it is a mistake, said before any trial."""
    scheduler = aid2e.AxScheduler(make_ax_client("unused_penalty"), threads, {**config, "penalty": {"objective": 1.0}})
    scheduler.set_objective_function(lambda x, y: {"objective": x})
    with pytest.raises(aid2e.ConfigError) as info:
        scheduler.run_optimization(max_trials=1)
    assert str(info.value).startswith("config 'penalty' is given but failure_policy is \"fail\" and no stage maps "
                                      "an exit code to \"penalty\": set config 'failure_policy': \"penalty\"")
    assert not scheduler.trials


@pytest.mark.parametrize("keys, message", [
    ({"failure_policy": "penalty"}, "config 'failure_policy' is \"penalty\": give config 'penalty' a value"),
    ({"failure_policy": "retry"}, "config 'failure_policy' must be \"fail\" or \"penalty\", got 'retry'"),
    ({"max_failed_trials": -1}, "config 'max_failed_trials' must be a non-negative integer, got -1"),
])
def test_failure_policy_keys_are_checked_together(make_ax_client, threads, config, keys, message):
    with pytest.raises(aid2e.ConfigError) as info:
        aid2e.AxScheduler(make_ax_client("policy_keys"), threads, {**config, **keys})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_max_failed_trials_counts_penalized_trials_and_stops_the_campaign(make_ax_client, threads, config):
    def objective(x, y):
        raise RuntimeError("the geometry overlaps")

    scheduler = aid2e.AxScheduler(make_ax_client("max_failed"), threads, {
        **config, "failure_policy": "penalty", "penalty": {"objective": 5.0}, "max_failed_trials": 2,
        "max_parallel_trials": 1, "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(objective)
    with pytest.raises(aid2e.FailureRateExceededError) as info:
        scheduler.run_optimization(max_trials=10)
    assert len(scheduler.trials) == 3 and all(r.penalized for r in scheduler.trials.values())
    assert "0 trials failed and 3 were penalized, more than max_failed_trials=2" in str(info.value)
