"""A campaign's record is never lost, forked or run twice (issue 10): one controller per
campaign directory, no silent overwrite, one directory per name, attempt tokens, paths that
follow the campaign directory, a save before every submission, one-line errors for damaged
state, and no following of trials by a runner that cannot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import aid2e
from aid2e.backend import Backend
from aid2e.errors import ConfigError, StateWriteError
from aid2e.ownership import CampaignLockedError, holder

HERE = Path(__file__).parent
DYING = HERE / "dying_controller.py"


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def trials_saved(state_dir: Path) -> dict:
    return json.loads((state_dir / "trials.json").read_text())


def runs(runs_log: Path) -> Counter:
    if not runs_log.exists():
        return Counter()
    return Counter(tuple(line.split()[:2]) for line in runs_log.read_text().splitlines())


def threads_runner():
    from aid2e_joblib import JobLibRunner

    return JobLibRunner(n_jobs=3, pool="threading")


def finished_campaign(root: Path, name: str, trials: int, make_ax_client) -> aid2e.AxScheduler:
    scheduler = aid2e.AxScheduler(make_ax_client(name), threads_runner(), {"job_output_dir": str(root)})
    scheduler.set_objective_function(lambda x, y: {"objective": 2 * x + y})
    scheduler.run_optimization(max_trials=trials)
    return scheduler


# ---------------------------------------------------------------- 1. no silent overwrite
def test_rerunning_a_script_does_not_overwrite_the_saved_campaign(tmp_path, make_ax_client):
    first = finished_campaign(tmp_path, "X", 6, make_ax_client)
    state_dir = first.experiment_dir
    before = (state_dir / "trials.json").read_bytes()
    again = aid2e.AxScheduler(make_ax_client("X"), threads_runner(), {"job_output_dir": str(tmp_path)})
    again.set_objective_function(lambda x, y: {"objective": 2 * x + y})
    with pytest.raises(ConfigError) as info:
        again.run_optimization(max_trials=2)
    message = str(info.value)
    assert "\n" not in message
    assert str(state_dir) in message and "saved campaign 'X' (6 trials)" in message
    assert f"aid2e resume {state_dir}" in message and "new name" in message
    assert (state_dir / "trials.json").read_bytes() == before  # nothing written
    assert holder(state_dir) is None  # the lock was let go


def test_load_if_exists_continues_the_saved_campaign(tmp_path, make_ax_client):
    first = finished_campaign(tmp_path, "X", 4, make_ax_client)
    values = {i: r.metrics["objective"].mean for i, r in first.trials.items()}
    again = aid2e.AxScheduler(make_ax_client("X"), threads_runner(),
                              {"job_output_dir": str(tmp_path), "load_if_exists": True})
    again.set_objective_function(lambda x, y: {"objective": 2 * x + y})
    again.run_optimization(max_trials=2)
    assert sorted(again.trials) == list(range(6))
    assert {i: again.trials[i].metrics["objective"].mean for i in range(4)} == values
    assert len(trials_saved(first.experiment_dir)["scheduler"]["trials"]) == 6


def test_load_if_exists_refuses_a_different_experiment(tmp_path, make_ax_client):
    finished_campaign(tmp_path, "X", 2, make_ax_client)
    other = make_ax_client("X", objectives=("loss",))
    again = aid2e.AxScheduler(other, threads_runner(), {"job_output_dir": str(tmp_path), "load_if_exists": True})
    again.set_objective_function(lambda x, y: {"loss": x})
    with pytest.raises(ConfigError, match="has objectives objective but this experiment has loss"):
        again.run_optimization(max_trials=1)


def test_trial_directories_without_state_are_not_reused(tmp_path, make_ax_client):
    (tmp_path / "X" / "trial_0").mkdir(parents=True)
    scheduler = aid2e.AxScheduler(make_ax_client("X"), threads_runner(), {"job_output_dir": str(tmp_path)})
    scheduler.set_objective_function(lambda x, y: {"objective": x})
    with pytest.raises(ConfigError, match="trial directories of an earlier run"):
        scheduler.run_optimization(max_trials=1)


def test_distinct_names_never_share_a_directory(tmp_path, make_ax_client):
    dirs = {name: finished_campaign(tmp_path, name, 1, make_ax_client).experiment_dir
            for name in ("a/b", "a_b", "a%2Fb", "..", ".")}
    assert len(set(dirs.values())) == len(dirs)
    for path in dirs.values():
        assert path.parent == tmp_path.resolve()  # always inside job_output_dir
        assert (path / "trials.json").exists()


# ---------------------------------------------------------------- 2. one controller
def test_a_second_controller_is_refused_while_one_runs(tmp_path, make_ax_client):
    """A run holds the campaign: AxScheduler.resume, `aid2e resume` (another process) and a
    second run fail at once naming the holder; `aid2e status` names it too."""
    gate = threading.Event()
    scheduler = aid2e.AxScheduler(make_ax_client("held"), threads_runner(), {"job_output_dir": str(tmp_path)})
    scheduler.set_objective_function(lambda x, y: (gate.wait(120), {"objective": x})[1])
    errors = []
    runner = threading.Thread(target=lambda: errors.append(scheduler.run_optimization(max_trials=2)))
    runner.start()
    state_dir = tmp_path / "held"
    try:
        wait_for(lambda: holder(state_dir) is not None and (state_dir / "trials.json").exists(), "the lock")
        owner = holder(state_dir)
        assert owner.pid == os.getpid() and owner.since is not None
        with pytest.raises(CampaignLockedError, match=f"run by another controller: pid {os.getpid()} on "):
            aid2e.AxScheduler.resume(str(state_dir))
        cli = subprocess.run([sys.executable, "-m", "aid2e", "resume", str(state_dir), "--max-trials", "1"],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1
        assert cli.stderr.count("\n") == 1 and f"pid {os.getpid()} on" in cli.stderr, cli.stderr
        # ... at once: before Ax and torch load (seconds on a busy login node)
        probe = ("import sys\nfrom aid2e.cli import main\ncode = main(['resume', sys.argv[1]])\n"
                 "print('CODE', code, 'HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in ('ax', 'torch')))\n")
        cli = subprocess.run([sys.executable, "-c", probe, str(state_dir)], capture_output=True, text=True, timeout=120)
        assert cli.stdout.splitlines()[-1] == "CODE 1 HEAVY []", cli.stdout + cli.stderr
        status = subprocess.run([sys.executable, "-m", "aid2e", "status", str(state_dir)],
                                capture_output=True, text=True, timeout=60)
        assert f"controller: pid {os.getpid()} on " in status.stdout, status.stdout
    finally:
        gate.set()
        runner.join(120)
    assert errors and len(scheduler.trials) == 2
    assert holder(state_dir) is None
    status = subprocess.run([sys.executable, "-m", "aid2e", "status", str(state_dir)],
                            capture_output=True, text=True, timeout=60)
    assert f"no controller: resume with aid2e resume {state_dir}" in status.stdout


def test_a_scheduler_on_an_older_copy_does_not_overwrite_newer_trials(tmp_path, make_ax_client):
    first = finished_campaign(tmp_path, "X", 2, make_ax_client)
    resumed = aid2e.AxScheduler.resume(str(first.experiment_dir), threads_runner())
    resumed.set_objective_function(lambda x, y: {"objective": 2 * x + y})
    resumed.run_optimization(max_trials=2)
    with pytest.raises(ConfigError, match="was saved after the state this scheduler last saved or loaded"):
        first.run_optimization(max_trials=1)
    assert len(trials_saved(first.experiment_dir)["scheduler"]["trials"]) == 4


# ---------------------------------------------------------------- 3, 5. tokens and saves before submission
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def die_at(tmp_path: Path, point: str, total: int, env: dict) -> Path:
    root = tmp_path / "jobs"
    proc = subprocess.run([sys.executable, str(DYING), str(root), point, str(total)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 17, proc.stdout + proc.stderr[-3000:]
    return root / "record"


def killed_with_jobs_in_flight(tmp_path: Path, total: int, env: dict) -> Path:
    """SIGKILL a controller once every one of its ``total`` trials was saved with its job's
    handle (the jobs wait for the file $GATE, so they are all still running then)."""
    root = tmp_path / "jobs"
    state_dir = root / "record"
    proc = subprocess.Popen([sys.executable, str(DYING), str(root), "after-submit:99", str(total)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def all_submitted():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            records = trials_saved(state_dir)["scheduler"]["trials"]
        except (OSError, ValueError):
            return False
        return len(records) == total and all(r["handle"] for r in records)

    try:
        wait_for(all_submitted, "every trial's job to be saved")
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    return state_dir


@pytest.fixture
def campaign_env(tmp_path, monkeypatch):
    runs_log = tmp_path / "runs.log"
    monkeypatch.setenv("RUNS_LOG", str(runs_log))
    return {**os.environ, "RUNS_LOG": str(runs_log)}, runs_log


def test_a_stale_trial_directory_is_never_adopted_as_a_result(tmp_path, campaign_env):
    """The controller died after saving trial 2's record, before submitting it; trial_2/ holds an
    older campaign's files (exit 0, objective 999). Resuming runs trial 2 for real."""
    env, runs_log = campaign_env
    state_dir = die_at(tmp_path, "before-submit:2", 3, env)
    stale = state_dir / "trial_2"
    stale.mkdir(exist_ok=True)
    (stale / "aid2e_command.json").write_text(json.dumps({"argv": ["true"], "env": {}, "token": "older"}))
    (stale / "aid2e_status.json").write_text(json.dumps({"pid": dead_pid(), "started_at": 1.0, "exit_code": 0,
                                                         "ended_at": 2.0, "token": "older"}))
    (stale / "result.json").write_text(json.dumps({"objective": 999.0}))
    scheduler = aid2e.AxScheduler.resume(str(state_dir), threads_runner())
    scheduler.run_optimization(max_trials=0)
    record = scheduler.trials[2]
    assert record.status == "COMPLETED"
    assert record.metrics["objective"].mean == 2 * record.parameters["x"] + record.parameters["y"]
    assert runs(runs_log)[("2", "trial_2")] == 1


def test_a_retry_is_saved_before_it_is_submitted(tmp_path, campaign_env, monkeypatch):
    """Trial 1's first attempt loses its launcher; the controller dies right after submitting the
    retry. Resuming follows attempt 2's job instead of running it again."""
    env, runs_log = campaign_env
    env["FAIL_FIRST_ATTEMPT"] = "1"
    monkeypatch.setenv("FAIL_FIRST_ATTEMPT", "1")
    state_dir = die_at(tmp_path, "after-retry-submit:1", 3, env)
    saved = {r["index"]: r for r in trials_saved(state_dir)["scheduler"]["trials"]}
    assert saved[1]["attempts"] == 2 and saved[1]["handle"] is None and saved[1]["token"]
    scheduler = aid2e.AxScheduler.resume(str(state_dir), threads_runner())
    scheduler.run_optimization(max_trials=0)
    assert [scheduler.trials[i].status for i in range(3)] == ["COMPLETED"] * 3
    wait_for(lambda: runs(runs_log)[("1", "attempt_2")] >= 1, "attempt 2's run")
    assert runs(runs_log)[("1", "attempt_2")] == 1, runs(runs_log)
    attempt = json.loads((state_dir / "trial_1" / "attempt_2" / "aid2e_attempt.json").read_text())
    assert attempt["token"] == saved[1]["token"] and attempt["attempt"] == 2


# ---------------------------------------------------------------- 4. the campaign lives where it is loaded
def test_resume_from_another_directory_writes_into_the_campaign(tmp_path, make_ax_client, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    scheduler = aid2e.AxScheduler(make_ax_client("rel"), threads_runner(), {"job_output_dir": "jobs"})
    scheduler.set_objective_function(lambda x, y: {"objective": x})
    scheduler.run_optimization(max_trials=2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    resumed = aid2e.AxScheduler.resume(str(work / "jobs" / "rel"), threads_runner())
    resumed.set_objective_function(lambda x, y: {"objective": x})
    resumed.run_optimization(max_trials=2)
    assert list(elsewhere.iterdir()) == []
    assert len(trials_saved(work / "jobs" / "rel")["scheduler"]["trials"]) == 4


def test_a_copied_campaign_never_writes_into_the_original(tmp_path, campaign_env):
    """Resume a `cp -a` backup of a campaign whose controller died with trials in flight: the
    backup runs them again in its own directories, the original's files stay as they were."""
    env, runs_log = campaign_env
    env["GATE"] = str(tmp_path / "gate")
    state_dir = killed_with_jobs_in_flight(tmp_path, 3, env)
    backup = tmp_path / "backup"
    shutil.copytree(state_dir, backup, symlinks=True)
    original = (state_dir / "trials.json").read_bytes()
    (tmp_path / "gate").touch()  # the original's jobs end now, writing into the original
    wait_for(lambda: all((state_dir / f"trial_{i}" / "result.json").exists() for i in range(3)), "the jobs")
    scheduler = aid2e.AxScheduler.resume(str(backup), threads_runner())
    assert scheduler.experiment_dir == backup.resolve()
    scheduler.run_optimization(max_trials=1)
    assert [scheduler.trials[i].status for i in range(4)] == ["COMPLETED"] * 4
    assert (state_dir / "trials.json").read_bytes() == original
    assert not (state_dir / "trial_3").exists() and (backup / "trial_3").exists()
    for record in scheduler.trials.values():
        assert Path(record.handle.workdir).is_relative_to(backup.resolve())
    saved = trials_saved(backup)["scheduler"]
    assert saved["campaign"]["dir"] == str(backup.resolve())
    assert all(not Path(r["handle"]["workdir"]).is_absolute() for r in saved["trials"])


# ---------------------------------------------------------------- 12. damaged state on resume
def _edit_trials(state_dir: Path, edit) -> None:
    document = trials_saved(state_dir)
    edit(document["scheduler"]["trials"])
    text = json.dumps(document)
    (state_dir / "trials.json").write_text(text)
    experiment = json.loads((state_dir / "experiment.json").read_text())
    experiment["saved_at"] = 0  # the edited trials.json is the newer one
    (state_dir / "experiment.json").write_text(json.dumps(experiment))


DAMAGE = [
    ("index-not-an-integer", lambda t: t[0].update(index="one"), "trial record #0 is malformed"),
    ("record-not-an-object", lambda t: t.__setitem__(0, [1, 2]), "trial record #0 is malformed"),
    ("missing-parameters", lambda t: t[1].pop("parameters"), "trial record #1 is malformed"),
    ("unknown-status", lambda t: t[0].update(status="DONE"), "unknown 'status' 'DONE'"),
    ("bad-metrics", lambda t: t[0].update(metrics={"objective": "high"}), "trial record #0 is malformed"),
    ("duplicate-index", lambda t: t.append(dict(t[0])), "trial 0 has two records"),
    ("unknown-key", lambda t: t[0].update(colour="red"), "trial record #0 is malformed"),
]


@pytest.mark.parametrize("edit, expected", [pytest.param(e, m, id=i) for i, e, m in DAMAGE])
def test_damaged_trial_records_are_one_line_errors(tmp_path, make_ax_client, edit, expected):
    state_dir = finished_campaign(tmp_path, "X", 2, make_ax_client).experiment_dir
    _edit_trials(state_dir, edit)
    with pytest.raises(ConfigError) as info:
        aid2e.AxScheduler.resume(str(state_dir), threads_runner())
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert f"{state_dir / 'trials.json'}:" in str(info.value)  # names the file the records came from
    cli = subprocess.run([sys.executable, "-m", "aid2e", "resume", str(state_dir)], capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 1 and cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr, cli.stderr


@pytest.mark.parametrize("damage, expected", [
    ("nested", "nested too deeply"),
    ("directory", "is a directory"),
    ("no-trials", "lacks the trial records"),
    ("config-list", "its 'config' is not an object"),
])
def test_damaged_state_files_are_one_line_errors(tmp_path, make_ax_client, damage, expected):
    state_dir = finished_campaign(tmp_path, "X", 1, make_ax_client).experiment_dir
    trials = state_dir / "trials.json"
    if damage == "nested":
        trials.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "directory":
        trials.unlink()
        trials.mkdir()
    elif damage == "no-trials":
        trials.write_text(json.dumps({"format": "aid2e-experiment", "version": 2, "saved_at": 1e12,
                                      "scheduler": {}}))
    else:
        document = trials_saved(state_dir)
        document["scheduler"]["config"] = [1]
        document["saved_at"] = 1e12
        trials.write_text(json.dumps(document))
    cli = subprocess.run([sys.executable, "-m", "aid2e", "resume", str(state_dir)], capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 1 and cli.stderr.count("\n") == 1, cli.stderr
    assert expected in cli.stderr and "Traceback" not in cli.stderr, cli.stderr


def test_disk_full_is_one_error_and_the_state_stays_resumable(tmp_path, make_ax_client, monkeypatch):
    """A write fails with ENOSPC mid-campaign: one StateWriteError naming the file and the way
    on; the last saved state loads and the campaign continues."""
    import errno

    from aid2e import atomic

    scheduler = aid2e.AxScheduler(make_ax_client("full"), threads_runner(), {"job_output_dir": str(tmp_path)})
    scheduler.set_objective_function(lambda x, y: {"objective": x})
    real_write, calls = atomic.write_bytes, []

    def write_bytes(path, data, **options):
        calls.append(path)
        if len(calls) > 4 and Path(path).name == "trials.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data, **options)

    monkeypatch.setattr(atomic, "write_bytes", write_bytes)
    with pytest.raises(StateWriteError) as info:
        scheduler.run_optimization(max_trials=6)
    message = str(info.value)
    assert "No space left on device" in message and "aid2e resume" in message and "\n" not in message
    assert isinstance(info.value.__cause__, OSError) and info.value.__context__ is info.value.__cause__
    monkeypatch.setattr(atomic, "write_bytes", real_write)
    resumed = aid2e.AxScheduler.resume(str(tmp_path / "full"), threads_runner())
    resumed.set_objective_function(lambda x, y: {"objective": x})
    resumed.run_optimization(max_trials=1)
    assert resumed.trials and all(r.status != "RUNNING" for r in resumed.trials.values())


# ---------------------------------------------------------------- 13. a runner that cannot follow
class OtherBackend(Backend):
    name = "other"

    def submit(self, request):
        raise AssertionError("never used")

    def poll(self, handles):
        return {}

    def result(self, handle):
        raise AssertionError("never used")

    def cancel(self, handle):
        pass


def test_resuming_with_a_runner_that_cannot_follow_is_refused(tmp_path, campaign_env):
    env, runs_log = campaign_env
    env["GATE"] = str(tmp_path / "gate")
    state_dir = killed_with_jobs_in_flight(tmp_path, 3, env)
    before = (state_dir / "trials.json").read_bytes()
    with pytest.raises(ConfigError) as info:
        aid2e.AxScheduler.resume(str(state_dir), OtherBackend())
    message = str(info.value)
    assert "still running as joblib jobs" in message and "resume with the runner they run on" in message
    assert (state_dir / "trials.json").read_bytes() == before
    (tmp_path / "gate").touch()
    scheduler = aid2e.AxScheduler.resume(str(state_dir), threads_runner())
    scheduler.run_optimization(max_trials=0)
    assert [scheduler.trials[i].status for i in range(3)] == ["COMPLETED"] * 3
    assert sorted(runs(runs_log).values()) == [1, 1, 1]
