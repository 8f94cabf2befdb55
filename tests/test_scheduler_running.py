"""How AxScheduler runs trials: slots kept full, Ax's in-flight cap lifted, both Ax APIs,
state saved after every change, progress shown."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

import aid2e
from aid2e.progress import Progress


class CountingRunner:
    """Wraps a runner and records how many jobs were in flight at most."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.kinds = inner.name, inner.kinds
        self.in_flight, self.most = set(), 0
        self.lock = threading.Lock()

    capacity = property(lambda self: self.inner.capacity)

    def start(self):
        self.inner.start()

    def submit(self, request):
        handle = self.inner.submit(request)
        with self.lock:
            self.in_flight.add(handle.native_id)
            self.most = max(self.most, len(self.in_flight))
        return handle

    def poll(self, handles):
        states = self.inner.poll(handles)
        with self.lock:
            self.in_flight -= {k for k, s in states.items() if s.is_final}
        return states

    def result(self, handle):
        return self.inner.result(handle)

    def cancel(self, handle):
        self.inner.cancel(handle)

    def wait(self, handles, timeout):
        return self.inner.wait(handles, timeout)


def sleepy(x, y):
    time.sleep(0.3)
    return {"objective": (x - 0.3) ** 2 + y}


def two_metrics(x, y):
    return {"a": x, "b": 1.0 - x + y}


def test_slots_stay_full_and_refill_without_fixed_sleeps(make_ax_client, config):
    from aid2e_joblib import JobLibRunner

    runner = CountingRunner(JobLibRunner(n_jobs=6, pool="threading"))
    scheduler = aid2e.AxScheduler(make_ax_client("full"), runner, {**config, "monitoring_interval": 30})
    scheduler.set_objective_function(sleepy)
    started = time.perf_counter()
    scheduler.run_optimization(max_trials=18)
    elapsed = time.perf_counter() - started
    assert runner.most == 6
    # 3 waves of 0.3 s; a scheduler that slept monitoring_interval (30 s) between checks would take minutes
    assert elapsed < 5, elapsed
    assert len(scheduler.experiment.trials) == 18


def test_botorch_in_flight_cap_is_lifted(make_ax_client, config):
    """Ax's BoTorch node caps trials in flight at 3; the scheduler raises it to its capacity."""
    from aid2e_joblib import JobLibRunner

    runner = CountingRunner(JobLibRunner(n_jobs=6, pool="threading"))
    scheduler = aid2e.AxScheduler(make_ax_client("cap", sobol=False), runner, config)
    scheduler.set_objective_function(sleepy)
    with scheduler.batch_trial_context() as batch:  # data first, so the BoTorch node is active
        for x in (0.1, 0.3, 0.5, 0.7, 0.9):
            batch.add_trial({"x": x, "y": x / 2})
    runner.most = 0
    scheduler.run_optimization(max_trials=6)
    assert runner.most > 3


def test_synchronous_runs_one_at_a_time(make_ax_client, threads, config):
    runner = CountingRunner(threads)
    scheduler = aid2e.AxScheduler(make_ax_client("sync"), runner, {**config, "synchronous": True})
    scheduler.set_objective_function(sleepy)
    scheduler.run_optimization(max_trials=3)
    assert runner.most == 1


def test_max_parallel_trials_overrides_capacity(make_ax_client, threads, config):
    runner = CountingRunner(threads)
    scheduler = aid2e.AxScheduler(make_ax_client("max2"), runner, {**config, "max_parallel_trials": 2})
    scheduler.set_objective_function(sleepy)
    scheduler.run_optimization(max_trials=5)
    assert runner.most == 2


def test_new_client_api_single_objective(make_client, threads, config):
    scheduler = aid2e.AxScheduler(make_client("client_single"), threads, config)
    scheduler.set_objective_function(lambda parameterization: {"objective": parameterization["x"]})
    best = scheduler.run_optimization(max_trials=6)
    xs = [t.arm.parameters["x"] for t in scheduler.experiment.trials.values()]
    assert best["x"] == min(xs)


def test_new_client_api_pareto_and_failures(make_client, threads, config):
    scheduler = aid2e.AxScheduler(make_client("client_pareto", objective="-a, -b"), threads,
                                  {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(two_metrics)
    pareto = scheduler.run_optimization(max_trials=8)
    assert pareto and set(pareto) <= set(range(8))
    points = {i: two_metrics(**t.arm.parameters) for i, t in scheduler.experiment.trials.items()}
    for i in pareto:  # nothing dominates a Pareto point
        assert not any(p["a"] < points[i]["a"] and p["b"] < points[i]["b"] for p in points.values())
    scheduler.set_objective_function(lambda x, y: {"a": x})
    scheduler.run_optimization(max_trials=1)
    trial = scheduler.experiment.trials[8]
    assert trial.status.name == "FAILED" and "lacks objective metric(s) 'b'" in trial.status_reason


def test_loky_workers_run_importable_functions(make_ax_client, config):
    """Functions run in separate worker processes with the default loky backend."""
    from aid2e.testing.conformance import objective_worker_pid  # module level: picklable by reference
    from aid2e_joblib import JobLibRunner

    with JobLibRunner(n_jobs=2) as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("loky"), runner, config)
        scheduler.set_objective_function(objective_worker_pid)
        scheduler.run_optimization(max_trials=4)
    pids = set(scheduler.experiment.lookup_data().df["mean"])
    assert len(scheduler.experiment.lookup_data().df) == 4
    assert os.getpid() not in pids


def test_state_is_saved_after_every_change(make_ax_client, threads, config, tmp_path):
    seen = []

    def watch(x, y):
        state = json.loads((tmp_path / "jobs" / "watched" / "trials.json").read_text())
        seen.append({t["index"]: t["status"] for t in state["scheduler"]["trials"]})
        return {"objective": x}

    scheduler = aid2e.AxScheduler(make_ax_client("watched"), threads, {**config, "synchronous": True})
    scheduler.set_objective_function(watch)
    scheduler.run_optimization(max_trials=3)
    # while trial i runs, the saved state already shows it RUNNING and the earlier ones COMPLETED
    assert seen == [{0: "RUNNING"}, {0: "COMPLETED", 1: "RUNNING"},
                    {0: "COMPLETED", 1: "COMPLETED", 2: "RUNNING"}]
    saved = json.loads((scheduler.experiment_dir / "trials.json").read_text())
    handles = [t["handle"] for t in saved["scheduler"]["trials"]]
    assert all(h["backend"] == "joblib" and h["native_id"] for h in handles)

    reloaded = aid2e.AxScheduler(None, threads, config)
    reloaded.load_experiment(str(scheduler.experiment_dir))
    assert [t.status.name for t in reloaded.experiment.trials.values()] == ["COMPLETED"] * 3


def test_stale_snapshot_is_completed_from_trial_records(make_ax_client, threads, config):
    """experiment.json is written every snapshot_interval; trials.json after every change.
    Loading the directory replays the newer trial records onto the older Ax snapshot."""
    scheduler = aid2e.AxScheduler(make_ax_client("stale"), threads, {**config, "snapshot_interval": 3600})
    scheduler.set_objective_function(lambda x, y: {"objective": x + y})
    scheduler.run_optimization(max_trials=2)
    snapshot = (scheduler.experiment_dir / "experiment.json").read_text()
    scheduler.run_optimization(max_trials=3)
    (scheduler.experiment_dir / "experiment.json").write_text(snapshot)  # as if we crashed before it was rewritten

    reloaded = aid2e.AxScheduler(None, threads, config)
    reloaded.load_experiment(str(scheduler.experiment_dir))
    assert [t.status.name for t in reloaded.experiment.trials.values()] == ["COMPLETED"] * 5
    original = scheduler.experiment.lookup_data().df.sort_values("trial_index")
    restored = reloaded.experiment.lookup_data().df.sort_values("trial_index")
    assert list(restored["mean"]) == list(original["mean"])


def test_snapshot_written_late_by_the_ax_thread_does_not_hide_newer_records(make_ax_client, threads, config):
    """The Ax thread writes experiment.json after the records it holds were taken; trials.json
    written in between holds more trials and must win (a controller killed then lost a trial)."""
    from aid2e.state import document_text
    from aid2e.storage.filestore import FileStore

    scheduler = aid2e.AxScheduler(make_ax_client("late"), threads, {**config, "snapshot_interval": 3600})
    scheduler.set_objective_function(lambda x, y: {"objective": x + y})
    scheduler.run_optimization(max_trials=2)
    taken_at, early_records = time.time(), scheduler._trials_json()
    scheduler.run_optimization(max_trials=2)
    # the late write: two records, captured before trials.json (four records) was written
    FileStore(scheduler.experiment_dir).write_text(
        "experiment", document_text(early_records, taken_at, scheduler._bridge.snapshot()))

    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), threads)
    assert sorted(resumed.trials) == [0, 1, 2, 3]
    assert [t.status.name for t in resumed.experiment.trials.values()] == ["COMPLETED"] * 4


def test_trials_generated_but_never_recorded_are_abandoned_on_resume(make_ax_client, threads, config):
    """A controller killed between Ax generating a trial and saving its record never launched
    it (records are saved before submission): on resume it is abandoned, not left pending."""
    from aid2e.state import document_text
    from aid2e.storage.filestore import FileStore

    scheduler = aid2e.AxScheduler(make_ax_client("unrecorded"), threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": x + y})
    scheduler.run_optimization(max_trials=2)
    generated, _ = scheduler._bridge.next_trials(1)
    FileStore(scheduler.experiment_dir).write_text(
        "experiment", document_text(scheduler._trials_json(), time.time(), scheduler._bridge.snapshot()))

    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), threads)
    (orphan,) = generated
    assert resumed.experiment.trials[orphan].status.name == "ABANDONED"
    assert "never launched" in resumed.experiment.trials[orphan].status_reason
    resumed.set_objective_function(lambda x, y: {"objective": x + y})
    resumed.run_optimization(max_trials=1)
    statuses = [t.status.name for t in resumed.experiment.trials.values()]
    assert statuses == ["COMPLETED", "COMPLETED", "ABANDONED", "COMPLETED"]


@pytest.mark.parametrize("api", ["AxClient", "Client"])
def test_compact_snapshot_round_trip_and_version_1_files_still_load(make_ax_client, make_client, threads, config,
                                                                    tmp_path, api):
    """The saved Ax snapshot is compacted (one data table, exact floats, the strategy's last run
    per model); a file written by aid2e's format 1 (Ax's full snapshot) loads the same."""
    client = make_ax_client("compact") if api == "AxClient" else make_client("compact")
    scheduler = aid2e.AxScheduler(client, threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": x / 3 + y})
    scheduler.run_optimization(max_trials=5)
    original = scheduler.experiment.lookup_data().df.sort_values("trial_index")

    compact = tmp_path / "compact.json"
    scheduler.save_experiment(str(compact))
    saved = json.loads(compact.read_text())
    assert saved["version"] == 2 and saved["ax"]["snapshot"]["experiment"]["data_by_trial"] == {}
    assert saved["ax"]["snapshot"]["generation_strategy"]["experiment"] is None
    bridge = scheduler._bridge
    full = {"api": bridge.kind, "snapshot": (bridge.client.to_json_snapshot() if api == "AxClient"
                                             else bridge.client._to_json_snapshot())}
    version_1 = tmp_path / "v1.json"
    version_1.write_text(json.dumps({**saved, "version": 1, "ax": full}))

    for path in (compact, version_1):  # each continues in its own directory (both are older than the run's)
        reloaded = aid2e.AxScheduler(None, threads, {**config, "job_output_dir": str(tmp_path / path.stem)})
        reloaded.load_experiment(str(path))
        restored = reloaded.experiment.lookup_data().df.sort_values("trial_index")
        assert list(restored["mean"]) == list(original["mean"])  # exact, not 10 decimals
        assert [t.status.name for t in reloaded.experiment.trials.values()] == ["COMPLETED"] * 5
        reloaded.set_objective_function(lambda x, y: {"objective": x / 3 + y})
        reloaded.run_optimization(max_trials=2)  # the generation strategy goes on
        assert len(reloaded.experiment.trials) == 7
    assert len(compact.read_bytes()) < len(version_1.read_bytes()) / 2


def test_progress_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    progress = Progress(10, stream=out)
    progress.update(completed=3, running=2, failed=1, best="objective=0.125")
    progress.update(completed=3, running=2, failed=1, best="objective=0.125")  # unchanged: not rewritten
    progress.close()
    assert out.getvalue() == "\r\033[Kaid2e: 3 completed, 2 running, 1 failed of 10; best objective=0.125\n"


def test_progress_is_a_log_record_off_a_terminal(caplog):
    """Off a terminal (a batch job's log file) the running counts are DEBUG records: the log gets a
    line per trial that ends (a WARNING when it failed) and the periodic summary, not every change."""
    caplog.set_level("DEBUG", logger="aid2e")
    progress = Progress(4, stream=io.StringIO())
    progress.update(completed=1, running=1, failed=0, best=None)
    progress.line("trial 0 FAILED: boom", logging.WARNING)
    progress.line("trial 1 COMPLETED: objective=1")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "aid2e: 1 completed, 1 running, 0 failed of 4"), ("WARNING", "trial 0 FAILED: boom"),
        ("INFO", "trial 1 COMPLETED: objective=1")]


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, aid2e, scheduler; print('ax' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("api", ["AxClient", "Client"])
def test_zero_trials_is_a_no_op(make_ax_client, make_client, threads, config, api):
    client = make_ax_client("zero") if api == "AxClient" else make_client("zero")
    scheduler = aid2e.AxScheduler(client, threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": x})
    assert scheduler.run_optimization(max_trials=0) is None
    assert len(scheduler.experiment.trials) == 0


def test_state_files_are_written_from_the_schedulers_thread_only(make_ax_client, threads, config, monkeypatch):
    """Ax's snapshot is made on Ax's owner thread, but every state file is written by the
    scheduler's thread (one writer: no two threads renaming files in the campaign directory)."""
    import threading

    from aid2e.storage.filestore import FileStore

    writers: list[tuple[str, str]] = []
    original = FileStore.write_text

    def recording(self, key, text):
        writers.append((key, threading.current_thread().name))
        return original(self, key, text)

    monkeypatch.setattr(FileStore, "write_text", recording)
    scheduler = aid2e.AxScheduler(make_ax_client("one_writer"), threads, {**config, "snapshot_interval": 0})
    scheduler.set_objective_function(lambda x, y: {"objective": x + y})
    scheduler.run_optimization(max_trials=6)
    assert {key for key, _ in writers} == {"trials", "experiment"}
    assert {name for _, name in writers} == {threading.current_thread().name}, writers
    assert sum(key == "experiment" for key, _ in writers) > 2  # snapshots during the run, not only at its ends


def test_a_result_in_the_aid2e_err_convention_reaches_ax_with_its_sem(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("err_convention"), threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": x + y, "objective_err": 0.125})
    scheduler.run_optimization(max_trials=2)
    df = scheduler.experiment.lookup_data().df
    assert list(df["sem"]) == [0.125, 0.125] and set(df["metric_name"]) == {"objective"}


def test_a_line_per_trial_that_ends_and_a_periodic_summary(caplog):
    from aid2e.progress import trial_text
    from aid2e.trials import TrialRecord
    from aid2e.types import Measurement

    caplog.set_level("INFO", logger="aid2e")
    now = [100.0]
    progress = Progress(10, stream=io.StringIO(), clock=lambda: now[0], summary_every=60.0)
    done = TrialRecord(index=3, parameters={}, status="COMPLETED", started_at=1000.0, ended_at=1130.0,
                       metrics={"sep": Measurement(mean=5.5, sem=0.01), "acc": Measurement(mean=0.8)})
    failed = TrialRecord(index=4, parameters={}, status="FAILED", started_at=1000.0, ended_at=1004.5,
                         message="job simulate/particle=pi+: script exited with code 2\nmore")
    assert trial_text(done, "sep=7.1") == "trial 3 COMPLETED: sep=5.5 +- 0.01, acc=0.8 in 2m10s; best sep=7.1"
    assert trial_text(failed, None) == "trial 4 FAILED: job simulate/particle=pi+: script exited with code 2 in 4.5s"
    counts = {"COMPLETED": 3, "FAILED": 1, "ABANDONED": 0, "RUNNING": 2}
    progress.tick(lambda: counts)  # not yet due: nothing
    now[0] = 160.0 + 3600
    progress.tick(lambda: counts)
    assert caplog.messages[-1] == ("aid2e: 4 of 10 trials finished (3 completed, 1 failed, 0 abandoned), 2 running; "
                                   "1h01m elapsed, about 1h31m left")
    assert len(caplog.messages) == 1


def test_saved_trials_say_which_ax_generation_made_them_and_when_they_ran(make_client, threads, config, tmp_path):
    """What a report draws: each trial's generation (Ax's node, its size and time) and its job's
    submission, first sight running and end, as aid2e status --json reads them back."""
    client = make_client("timing")
    scheduler = aid2e.AxScheduler(client, threads, config)
    scheduler.set_objective_function(lambda x, y: {"objective": (x - 0.3) ** 2 + y})
    scheduler.run_optimization(max_trials=7)
    from aid2e.state import read_state

    trials = read_state(scheduler.experiment_dir).trials
    assert len(trials) == 7
    for trial in trials:  # Ax's own record of the node that made each trial
        made_by = scheduler.experiment.trials[trial.index].generator_runs[0]._generation_node_name
        assert trial.generation["node"] == made_by and made_by
    for trial in trials:
        assert trial.generation["size"] >= 1 and trial.generation["seconds"] >= 0
        assert trial.generation["at"] <= trial.submitted_at <= trial.ended_at
        if trial.running_at is not None:  # a thread's job may end before any poll sees it running
            assert trial.submitted_at <= trial.running_at <= trial.ended_at


@pytest.mark.parametrize("api", ["Client"])   # AxClient's loop does not ask Ax past its initial batch this way
def test_axs_fewer_trials_warning_is_not_shown_to_the_user(api):
    """aid2e asks Ax ahead, so at the end of the initial Sobol batch Ax warns "N trials requested
    but only M could be generated": normal here, so it goes to aid2e's DEBUG log, not the terminal."""
    code = textwrap.dedent(f"""
        import logging
        from aid2e import AxScheduler, JobLibRunner
        from aid2e.testing.experiments import unit_square_ax_client
        seen = []
        class Keep(logging.Handler):
            def emit(self, record):
                seen.append(record.getMessage())
        logging.getLogger("aid2e").addHandler(Keep())
        logging.getLogger("aid2e").setLevel(logging.DEBUG + 1)   # not DEBUG: Ax stays quiet
        logging.getLogger("aid2e.ax_bridge").setLevel(logging.DEBUG)
        if {api!r} == "Client":
            from ax import Client, RangeParameterConfig
            client = Client()
            client.configure_experiment(name="e", parameters=[
                RangeParameterConfig(name=n, parameter_type="float", bounds=(0.0, 1.0)) for n in "xy"])
            client.configure_optimization(objective="-objective")
        else:
            client = unit_square_ax_client("e")
        s = AxScheduler(client, JobLibRunner(n_jobs=2, pool="threading"), {{"job_output_dir": "jobs"}})
        s.set_objective_function(lambda p: {{"objective": (p["x"] - 0.5) ** 2 + p["y"]}})
        s.run_optimization(max_trials=7)
        assert any("could be generated" in m for m in seen), seen   # Ax did say it: to aid2e's DEBUG
    """)
    with tempfile.TemporaryDirectory() as where:
        done = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could be generated" not in done.stderr + done.stdout
