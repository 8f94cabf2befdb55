"""``aid2e status PATH``: a campaign's trials from its saved state, without Ax; bad state files
are one-line errors (exit 1), never tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import aid2e
from aid2e import state as state_module
from aid2e.cli import main

pytestmark = pytest.mark.timeout(120)


def fails_when_x_big(x, y):
    if x > 0.7:
        raise RuntimeError(f"geometry overlap at x={x:.3f}")
    return {"objective": (x - 0.3) ** 2 + y}


def run_status(capsys, *args):
    code = main(["status", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def campaign(make_ax_client, threads, config):
    """A finished campaign (Sobol, seed 1): 6 trials, the ones with x > 0.7 failed."""
    scheduler = aid2e.AxScheduler(make_ax_client("status_demo"), threads,
                                  {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(fails_when_x_big)
    scheduler.run_optimization(max_trials=6)
    statuses = {r.status for r in scheduler.trials.values()}
    assert statuses == {"COMPLETED", "FAILED"}, statuses  # the seed gives both
    return scheduler


def table_rows(out):
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Trial"))
    return lines[header + 1:-1], lines[-1]


def test_table_of_a_finished_campaign(campaign, capsys):
    code, out, err = run_status(capsys, campaign.experiment_dir)
    assert code == 0 and err == ""
    assert out.startswith("experiment status_demo (")
    rows, summary = table_rows(out)
    assert len(rows) == 6
    for row, (index, record) in zip(rows, sorted(campaign.trials.items()), strict=True):
        cells = row.split()
        assert cells[0] == str(index) and cells[1] == record.status
        assert f"x={record.parameters['x']:.4g}," in row
        assert f"joblib {record.handle.native_id}" in row
        if record.status == "COMPLETED":
            assert f"objective={record.metrics['objective'].mean:.6g}" in row
        else:
            assert "objective raised RuntimeError: geometry overlap at x=" in row
            assert "Traceback" not in row and "function.py" not in row  # first line of the reason only
    counts = {s: sum(r.status == s for r in campaign.trials.values()) for s in ("COMPLETED", "FAILED")}
    best = min(r.metrics["objective"].mean for r in campaign.trials.values() if r.status == "COMPLETED")
    best_index = next(i for i, r in campaign.trials.items() if r.metrics.get("objective")
                      and r.metrics["objective"].mean == best)
    assert summary == (f"6 trials: {counts['COMPLETED']} completed, {counts['FAILED']} failed, 0 running; "
                       f"best: objective={best:.6g} (minimize, trial {best_index})")


def test_json_has_everything(campaign, capsys):
    code, out, _ = run_status(capsys, campaign.experiment_dir, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["experiment"] == "status_demo"
    assert data["objectives"] == {"objective": True}
    assert data["counts"]["FAILED"] == sum(r.status == "FAILED" for r in campaign.trials.values())
    assert len(data["trials"]) == 6
    for trial in data["trials"]:
        record = campaign.trials[trial["index"]]
        assert trial["parameters"] == record.parameters  # exact values, not the table's 4 digits
        assert trial["status"] == record.status
        assert trial["backend"] == "joblib" and trial["job_id"] == record.handle.native_id
        assert trial["runtime"] == pytest.approx(record.ended_at - record.started_at)
        if record.status == "FAILED":
            assert trial["message"] == record.message  # the whole message, traceback included
            assert trial["metrics"] == {}
        else:
            assert trial["metrics"]["objective"]["mean"] == record.metrics["objective"].mean


def test_accepts_experiment_json_and_a_save_experiment_file(campaign, capsys, tmp_path):
    saved = tmp_path / "saved.json"
    campaign.save_experiment(str(saved))
    _, from_dir, _ = run_status(capsys, campaign.experiment_dir, "--json")
    for path in (campaign.experiment_dir / "experiment.json", campaign.experiment_dir / "trials.json", saved):
        code, out, err = run_status(capsys, path, "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["trials"] == [
            {**t, "runtime": pytest.approx(t["runtime"])} for t in json.loads(from_dir)["trials"]
        ]
    # trials.json alone does not say which way the objective goes: the metrics are listed instead
    code, out, _ = run_status(capsys, campaign.experiment_dir / "trials.json")
    assert out.splitlines()[-1].endswith("; metrics: objective (objective direction not in the saved state)")


def test_a_running_campaign_captured_mid_run(make_ax_client, threads, config, capsys, tmp_path):
    """Trial 0 completes, the others block: trials.json (newer than experiment.json) shows them
    RUNNING with their job ids; status reads it while the campaign runs."""
    release = threading.Event()

    def objective(x, y):
        if x < 0.5:
            return {"objective": x}
        release.wait(60)
        return {"objective": y}

    scheduler = aid2e.AxScheduler(make_ax_client("midrun"), threads, {**config, "snapshot_interval": 3600})
    scheduler.set_objective_function(objective)
    worker = threading.Thread(target=scheduler.run_optimization, kwargs={"max_trials": 4})
    worker.start()
    state_dir = tmp_path / "jobs" / "midrun"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                doc = json.loads((state_dir / "trials.json").read_text())
            except (FileNotFoundError, ValueError):
                doc = {"scheduler": {"trials": []}}
            records = doc["scheduler"]["trials"]
            running = [r for r in records if r["status"] == "RUNNING" and r["handle"]]
            if len(records) == 4 and len(running) == len(records) - sum(r["status"] == "COMPLETED" for r in records) \
                    and any(r["status"] == "COMPLETED" for r in records):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no mid-run state appeared: {records}")
        snapshot = tmp_path / "captured"
        shutil.copytree(state_dir, snapshot, ignore=shutil.ignore_patterns("trial_*"))
        code, out, err = run_status(capsys, state_dir)
    finally:
        release.set()
        worker.join(60)
    assert code == 0, err
    rows, summary = table_rows(out)
    assert len(rows) == 4
    running_rows = [r for r in rows if r.split()[1] == "RUNNING"]
    assert running_rows and all(" joblib fn-" in r for r in running_rows)
    assert f"{len(running_rows)} running" in summary and "best: objective=" in summary
    # the copy keeps what was captured; experiment.json there is older and holds fewer finished trials
    captured = json.loads(subprocess.run(
        [sys.executable, "-m", "aid2e", "status", str(snapshot), "--json"],
        capture_output=True, text=True, check=True).stdout)
    assert captured["counts"]["RUNNING"] == len(running_rows)
    assert captured["source"].endswith("trials.json")
    assert all(t["runtime"] is not None for t in captured["trials"])
    # after the run, the same directory shows every trial ended
    code, out, _ = run_status(capsys, state_dir, "--json")
    assert json.loads(out)["counts"]["RUNNING"] == 0


def test_a_running_trial_made_of_stages_shows_its_jobs_not_being_submitted(make_ax_client, threads, config, capsys,
                                                                          tmp_path):
    """A staged trial has no handle of its own (its jobs have them): while its jobs run, the
    table shows them with their ids, and does not call the trial "(being submitted)"."""
    release = threading.Event()

    def simulate(x, y):
        release.wait(60)
        return {"objective": x + y}

    scheduler = aid2e.AxScheduler(make_ax_client("staged_midrun"), threads, {**config, "snapshot_interval": 3600})
    scheduler.set_workflow(aid2e.Workflow([aid2e.Stage("simulate", function=simulate)]))
    worker = threading.Thread(target=scheduler.run_optimization, kwargs={"max_trials": 2})
    worker.start()
    state_dir = tmp_path / "jobs" / "staged_midrun"
    try:
        deadline = time.monotonic() + 30
        records = []
        while time.monotonic() < deadline:
            try:
                records = json.loads((state_dir / "trials.json").read_text())["scheduler"]["trials"]
            except (FileNotFoundError, ValueError, KeyError):
                records = []
            if len(records) == 2 and all(job["handle"] for r in records for job in r["jobs"]):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the jobs were never submitted: {records}")
        code, out, err = run_status(capsys, state_dir)
    finally:
        release.set()
        worker.join(60)
    assert code == 0, err
    assert "being submitted" not in out, out
    rows, summary = table_rows(out)
    trial_rows = [r for r in rows if r.split()[0].isdigit()]
    assert [r.split()[1] for r in trial_rows] == ["RUNNING", "RUNNING"]
    assert all("1 jobs: 1 running" in r for r in trial_rows)
    job_rows = [r for r in rows if "simulate/job" in r]
    assert len(job_rows) == 2 and all(" joblib fn-" in r for r in job_rows)
    assert "2 running" in summary


def test_long_and_hostile_parameters_are_abbreviated_in_the_table_and_complete_in_json(campaign, capsys, tmp_path):
    doc = json.loads((campaign.experiment_dir / "trials.json").read_text())
    many = {f"layer_{i}_thickness": i + 0.123456789 for i in range(40)}
    many["evil\nname"] = "a\nb\x1b[31m; rm -rf /"
    doc["scheduler"]["trials"][0]["parameters"] = many
    path = tmp_path / "trials.json"
    path.write_text(json.dumps(doc))
    code, out, _ = run_status(capsys, path)
    assert code == 0
    rows, _ = table_rows(out)
    assert len(rows) == 6  # no cell broke a row in two
    assert "(+" in rows[0] and "more)" in rows[0]
    assert "\x1b" not in out
    assert max(len(r) for r in rows) < 260
    code, out, _ = run_status(capsys, path, "--json")
    assert json.loads(out)["trials"][0]["parameters"] == many


def copy_state(campaign, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(campaign.experiment_dir, target, ignore=shutil.ignore_patterns("trial_*"))
    return target


def corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage, expected",
    [
        (corrupt_truncate, "is truncated (cut off mid-document)"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "is not a text (JSON) file"),
        (lambda p: p.write_text('{"trials": [1, 2]} trailing'), "is not valid JSON"),
        (lambda p: p.write_text('{"some": "thing"}'), "is not an aid2e state file"),
        (lambda p: p.write_text("[1, 2, 3]"), "is not an aid2e state file"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "version": 99})),
         "has format version 99, newer than this aid2e reads (2): upgrade aid2e"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "scheduler": {}})),
         "lacks the trial records"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()),
                                            "scheduler": {"trials": [{"index": "zero"}]}})),
         "trial record #0 is malformed: 'index' must be an integer"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "scheduler": {"trials": [
            {"index": 0, "parameters": {}, "jobs": [{"stage": "simulate", "name": ""}]}]}})),
         "trial record #0 is malformed: job #0: 'name' must be a non-empty string, got ''"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "scheduler": {"trials": [
            {"index": 0, "parameters": {}, "jobs": [{"stage": "a", "name": "job", "status": "LOST"}]}]}})),
         "trial record #0 is malformed: job #0: unknown job 'status' 'LOST'"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "scheduler": {"trials": [
            {"index": 0, "parameters": {}, "jobs": {"a/job": {}}}]}})),
         "trial record #0 is malformed: 'jobs' must be a list, got dict"),
    ],
    ids=["truncated", "empty", "binary", "trailing-garbage", "other-json", "array", "newer-version",
         "no-records", "bad-record", "bad-job-name", "bad-job-status", "jobs-not-a-list"],
)
@pytest.mark.parametrize("which", ["trials.json", "experiment.json"])
def test_corrupted_state_file_is_a_one_line_error(campaign, capsys, tmp_path, damage, expected, which):
    target = copy_state(campaign, tmp_path)
    damage(target / which)
    code, out, err = run_status(capsys, target)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("aid2e: error: ")
    assert str(target / which) in err
    assert expected in err


def test_missing_directory_and_empty_directory(capsys, tmp_path):
    code, out, err = run_status(capsys, tmp_path / "nowhere" / "exp")
    assert code == 1 and out == ""
    assert err == (f"aid2e: error: no campaign state at {tmp_path / 'nowhere' / 'exp'}: no such file or "
                   f"directory (the directory {tmp_path / 'nowhere'} does not exist either)\n")
    code, _, err = run_status(capsys, tmp_path)
    assert code == 1
    assert err == (f"aid2e: error: no saved state in {tmp_path}: expected trials.json or experiment.json "
                   "(give the directory <job_output_dir>/<experiment name>/)\n")


def test_the_command_never_prints_a_traceback_and_never_imports_ax(campaign, tmp_path):
    target = copy_state(campaign, tmp_path)
    corrupt_truncate(target / "trials.json")
    probe = (
        "import sys\n"
        "from aid2e.cli import main\n"
        "codes = [main(['status', sys.argv[1]]), main(['status', sys.argv[2], '--json'])]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ax', 'torch', 'botorch', 'cattrs'))\n"
        "print('CODES', codes, 'HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(campaign.experiment_dir), str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "CODES [0, 1] HEAVY []"
    assert "Traceback" not in proc.stderr
    # the installed console script too
    proc = subprocess.run([str(Path(sys.executable).with_name("aid2e")), "status", str(target)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "truncated" in proc.stderr


def test_status_knows_the_scheduler_format():
    from aid2e import ax_scheduler, state_writer

    assert (state_module.STATE_FORMAT, state_module.STATE_VERSION) == (ax_scheduler.STATE_FORMAT,
                                                                       ax_scheduler.STATE_VERSION)
    assert (state_module.TRIALS_FILE, state_module.EXPERIMENT_FILE) == (f"{state_writer.TRIALS_KEY}.json",
                                                                        f"{state_writer.EXPERIMENT_KEY}.json")


def test_objective_direction_from_ax_client_api(make_client, threads, config, capsys):
    scheduler = aid2e.AxScheduler(make_client("maxi", objective="objective"), threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": x + y})
    scheduler.run_optimization(max_trials=3)
    _, out, _ = run_status(capsys, scheduler.experiment_dir)
    best, index = max((r.metrics["objective"].mean, i) for i, r in scheduler.trials.items())
    assert out.splitlines()[-1].endswith(f"best: objective={best:.6g} (maximize, trial {index})")


def test_a_penalized_trial_says_so_and_why(make_ax_client, threads, config, capsys):
    """A penalized trial is COMPLETED with the campaign's penalty values: the table must not show it
    as an ordinary completed trial (its values are no result), and the summary counts it."""
    scheduler = aid2e.AxScheduler(make_ax_client("status_penalty"), threads,
                                  {**config, "failure_policy": "penalty", "penalty": {"objective": 9.0}})
    scheduler.set_objective_function(fails_when_x_big)
    scheduler.run_optimization(max_trials=6)
    penalized = {i for i, r in scheduler.trials.items() if r.penalized}
    assert penalized and len(penalized) < 6  # the seed gives both
    code, out, _ = run_status(capsys, scheduler.experiment_dir)
    assert code == 0
    rows, summary = table_rows(out)
    for row, index in zip(rows, sorted(scheduler.trials), strict=True):
        if index in penalized:
            assert row.split()[1:3] == ["COMPLETED", "(penalized)"], row
            assert "objective=9 (objective raised RuntimeError: geometry overlap at x=" in row  # the reason, clipped
        else:
            assert row.split()[1] == "COMPLETED" and "penalized" not in row, row
    assert summary.startswith(f"6 trials: 6 completed ({len(penalized)} penalized), 0 failed, 0 running; best: ")
