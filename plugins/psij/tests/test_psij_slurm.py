"""The PSI/J backend on the real local Slurm: the seed's SlurmRunner examples, options, errors,
PSI/J's status-parsing hang (#533), one squeue per tick, and interrupting a run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import attrs
import pytest

import aid2e
from aid2e.errors import CampaignInterrupted
from aid2e.testing.experiments import unit_square_ax_client
from aid2e.types import JobState
from aid2e_psij import SlurmRunner

pytestmark = pytest.mark.timeout(300)


def ax_client(name):
    return unit_square_ax_client(name, seed=3)


def objective_function(parameterization):
    x, y = parameterization["x"], parameterization["y"]
    return {"objective": (x - 0.5) ** 2 + (y - 0.5) ** 2}


def slurm_record(job_id: str) -> str:
    """Slurm's own record of a job (jobcomp/filetxt, as configured by scripts/services/slurm.sh)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        for line in Path("/var/log/slurm/jobcomp.log").read_text().splitlines():
            if line.startswith(f"JobId={job_id} "):
                return line
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in Slurm's job completion log")


def observed(scheduler):
    df = scheduler.experiment.lookup_data().df
    return {int(r.trial_index): float(r["mean"]) for _, r in df.iterrows()}


def test_seed_function_example_on_slurm(slurm_cluster, tmp_path):
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00", memory="1G",
                         cpus_per_task=1, config={"sbatch_options": {"comment": "aid2e seed example"}})
    scheduler = aid2e.AxScheduler(ax_client("seed slurm; function"), runner,
                                  {"job_output_dir": str(tmp_path), "monitoring_interval": 2})
    scheduler.set_objective_function(objective_function)
    best = scheduler.run_optimization(max_trials=4)
    values = observed(scheduler)
    assert len(values) == 4
    for index, value in values.items():
        assert value == objective_function(scheduler.experiment.trials[index].arm.parameters)["objective"]
        record = slurm_record(scheduler.trials[index].handle.native_id)
        assert "JobState=COMPLETED" in record and f"Name=aid2e-seed_slurm_function-{index} " in record
        assert f"WorkDir={scheduler.trial_dir(index)} " in record
    assert best == scheduler.experiment.trials[min(values, key=values.get)].arm.parameters


def test_seed_script_example_on_slurm_with_modules_and_options(slurm_cluster, tmp_path, monkeypatch):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    module = fake_bin / "module"
    module.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/modules.log"\n')
    module.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")  # jobs inherit the environment
    script = tmp_path / "my_simulation_script.py"
    script.write_text(textwrap.dedent("""
        import json, os
        p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
        value = (p["x"] - 0.5) ** 2 + (p["y"] - 0.5) ** 2
        json.dump({"objective": value, "slurm_job": float(os.environ["SLURM_JOB_ID"])},
                  open(os.environ["AID2E_RESULT_FILE"], "w"))
    """))
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00", memory="1G",
                         cpus_per_task=2, config={"modules": ["python", "geant4/11.2"],
                                                  "sbatch_options": {"comment": "aid2e script example"}})
    scheduler = aid2e.AxScheduler(ax_client("seed_slurm_script"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 2})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=3)
    for index, value in observed(scheduler).items():
        assert value == objective_function(scheduler.experiment.trials[index].arm.parameters)["objective"]
    job_ids = [r.handle.native_id for r in scheduler.trials.values()]
    assert sorted(Path(tmp_path / "modules.log").read_text().splitlines()) == sorted(
        ["load python", "load geant4/11.2"] * 3)
    shown = subprocess.run(["scontrol", "show", "job", job_ids[0]], capture_output=True, text=True).stdout
    assert "Comment=aid2e script example" in shown
    assert re.search(r"NumCPUs=2\b", shown) and "MinMemoryNode=1G" in shown and "TimeLimit=00:10:00" in shown


def test_trial_resources_from_the_scheduler_config_reach_sbatch(slurm_cluster, tmp_path):
    """config 'resources' (cpus, memory, walltime, queue) override the runner's defaults."""
    script = tmp_path / "objective.sh"
    script.write_text('echo \'{"objective": 1.0}\' > "$AID2E_RESULT_FILE"\n')
    runner = SlurmRunner(partition="no_such_partition", time_limit="00:10:00", memory="1G", cpus_per_task=1)
    scheduler = aid2e.AxScheduler(ax_client("sized_on_slurm"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1,
        "resources": {"cpus": 2, "memory": "300M", "walltime": "00:07:00", "queue": slurm_cluster["partition"]}})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    (record,) = scheduler.trials.values()
    assert record.status == "COMPLETED", record.message
    shown = subprocess.run(["scontrol", "show", "job", record.handle.native_id], capture_output=True, text=True).stdout
    assert re.search(r"NumCPUs=2\b", shown) and "MinMemoryNode=300M" in shown and "TimeLimit=00:07:00" in shown
    assert f"Partition={slurm_cluster['partition']}" in shown


def test_the_extra_of_trial_resources_are_batch_options(slurm_cluster, tmp_path):
    """resources 'extra' ("backend-specific options") become sbatch options, over the runner's
    sbatch_options; a requeue option there is refused as it is in sbatch_options."""
    script = tmp_path / "objective.sh"
    script.write_text('echo \'{"objective": 1.0}\' > "$AID2E_RESULT_FILE"\n')
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00",
                         config={"sbatch_options": {"comment": "from the runner"}})
    scheduler = aid2e.AxScheduler(ax_client("extra_on_slurm"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1,
        "resources": {"extra": {"comment": "from the trial's extra", "nice": "7"}}})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    (record,) = scheduler.trials.values()
    assert record.status == "COMPLETED", record.message
    shown = subprocess.run(["scontrol", "show", "job", record.handle.native_id], capture_output=True, text=True).stdout
    assert "Comment=from the trial's extra" in shown and "Nice=7" in shown, shown

    refused = aid2e.AxScheduler(ax_client("requeue_extra"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "tolerated_failure_rate": 1.0,
        "resources": {"extra": {"requeue": ""}}})
    refused.set_script_objective(str(script))
    refused.run_optimization(max_trials=1)
    (record,) = refused.trials.values()
    assert record.status == "FAILED"
    assert "resources 'extra': sbatch option 'requeue' is not allowed" in record.message, record.message


def test_psij_files_of_ended_jobs_are_removed(slurm_cluster, tmp_path):
    """PSI/J leaves four files per job in its work directory; once a job's result is read they
    go (a campaign of hundreds of jobs left thousands, and reused job ids met stale exit codes)."""
    script = tmp_path / "objective.sh"
    script.write_text('echo \'{"objective": 2.0}\' > "$AID2E_RESULT_FILE"\n')
    work = tmp_path / "psij-work"
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:05:00",
                         config={"work_directory": str(work)})
    scheduler = aid2e.AxScheduler(ax_client("tidy"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=3)
    assert [r.status for r in scheduler.trials.values()] == ["COMPLETED"] * 3
    handles = [r.handle for r in scheduler.trials.values()]
    assert all(h.extra.get("psij_id") for h in handles)
    runner.close()  # the last batch scripts write their exit codes just after the launchers end
    assert sorted(p.name for p in (work / "slurm").iterdir()) == []
    # the same result again (e.g. asked twice) is the kept one, not a "job vanished"
    assert runner.result(handles[0]).state.name == "COMPLETED"


def test_sbatch_error_becomes_a_failed_trial_with_its_message(slurm_cluster, tmp_path):
    runner = SlurmRunner(partition="no_such_partition", time_limit="00:10:00")
    scheduler = aid2e.AxScheduler(ax_client("bad_partition"), runner,
                                  {"job_output_dir": str(tmp_path), "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(objective_function)
    scheduler.run_optimization(max_trials=2)
    for trial in scheduler.experiment.trials.values():
        assert trial.status.name == "FAILED"
        assert "invalid partition specified" in trial.status_reason.lower()
        assert "could not submit the job: slurm refused the job" in trial.status_reason


def test_unknown_sbatch_option_is_refused_with_sbatch_message(slurm_cluster, tmp_path):
    runner = SlurmRunner(partition=slurm_cluster["partition"], config={"sbatch_options": {"no-such-option": "1"}})
    scheduler = aid2e.AxScheduler(ax_client("bad_option"), runner,
                                  {"job_output_dir": str(tmp_path), "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(objective_function)
    scheduler.run_optimization(max_trials=1)
    reason = scheduler.experiment.trials[0].status_reason
    assert "unrecognized option" in reason and "no-such-option" in reason


def test_psij_hang_533_does_not_stall_trials(slurm_cluster, tmp_path):
    """A foreign job ending with a reason PSI/J does not know (DeadLine) made upstream PSI/J's
    squeue parsing fail on every poll, for every job (ExaWorks/psij-python#533). Here it must not."""
    from psij import JobExecutor

    foreign = subprocess.run(["sbatch", "--parsable", "--deadline=now+1seconds", "--time=10", "-o", "/dev/null",
                              "--wrap", "sleep 120"], capture_output=True, text=True, check=True).stdout.strip()
    deadline = time.time() + 30
    out = ""
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-O", "JobArrayID,StateCompact,Reason", "-t", "all", "--me"],
                             capture_output=True, text=True, check=True).stdout
        if re.search(rf"^{foreign}\s+\S+\s+DeadLine", out, flags=re.M):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"could not make a DeadLine job; squeue said:\n{out}")
    with pytest.raises(AssertionError):  # the upstream parser really breaks on it
        JobExecutor.get_instance("slurm").parse_status_output(0, out)

    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00")
    scheduler = aid2e.AxScheduler(ax_client("hang533"), runner,
                                  {"job_output_dir": str(tmp_path), "monitoring_interval": 2})
    scheduler.set_objective_function(objective_function)
    started = time.monotonic()
    scheduler.run_optimization(max_trials=4)
    elapsed = time.monotonic() - started
    assert [t.status.name for t in scheduler.experiment.trials.values()] == ["COMPLETED"] * 4
    assert elapsed < 60, f"trials took {elapsed:.0f}s next to a DeadLine job (upstream PSI/J waits ~300 s)"


def test_one_squeue_per_tick(slurm_cluster, tmp_path, squeue_counter):
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00",
                         config={"max_in_flight": 6})
    scheduler = aid2e.AxScheduler(ax_client("ticks"), runner,
                                  {"job_output_dir": str(tmp_path), "monitoring_interval": 1})
    scheduler.set_objective_function(objective_function)
    scheduler.run_optimization(max_trials=12)
    assert runner.status_calls > 0
    assert squeue_counter() == runner.status_calls  # every poll of all jobs: exactly one squeue


def _sigint_when_running(scheduler_dir: Path, jobs: int, presses: int, gap: float = 0.5) -> threading.Thread:
    """Send SIGINT to this process ``presses`` times once ``jobs`` launchers wrote their status."""
    def run():
        deadline = time.time() + 120
        while time.time() < deadline:
            if len(list(scheduler_dir.glob("trial_*/aid2e_status.json"))) >= jobs:
                break
            time.sleep(0.05)
        for _ in range(presses):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(gap)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def test_first_ctrl_c_leaves_the_slurm_jobs_and_resume_collects_them(slurm_cluster, tmp_path):
    """Ctrl-C once: nothing more is submitted, the jobs keep running on Slurm, the message says
    how to resume; a resumed scheduler follows the same jobs to their results."""
    release = tmp_path / "release"  # the jobs run until the test has seen them outlive the controller
    script = tmp_path / "slow.py"
    script.write_text(f"import json, os, time\ndeadline = time.monotonic() + 300\n"
                      f"while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
                      f"    time.sleep(0.1)\n"
                      "json.dump({'objective': 1.5}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00")
    config = {"job_output_dir": str(tmp_path / "jobs"), "max_parallel_trials": 2, "monitoring_interval": 1}
    scheduler = aid2e.AxScheduler(ax_client("interrupt_once"), runner, config)
    scheduler.set_script_objective(str(script))
    _sigint_when_running(scheduler.experiment_dir, jobs=2, presses=1)
    with pytest.raises(CampaignInterrupted, match=r"2 trial\(s\) left running as jobs.*aid2e resume"):
        scheduler.run_optimization(max_trials=10)
    assert len(scheduler.trials) == 2  # nothing submitted after the Ctrl-C
    job_ids = [r.handle.native_id for r in scheduler.trials.values()]
    assert all(squeue_state(j) in ("RUNNING", "COMPLETING", "") for j in job_ids)
    assert all(squeue_state(j) == "RUNNING" for j in job_ids)  # still there after the controller let go
    release.touch()

    resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), runner)
    resumed.run_optimization(max_trials=0)
    assert [resumed.experiment.trials[i].status.name for i in resumed.trials] == ["COMPLETED"] * 2
    assert [r.handle.native_id for r in resumed.trials.values()] == job_ids  # the same jobs, not new ones


def test_second_ctrl_c_cancels_the_slurm_jobs(slurm_cluster, tmp_path, monkeypatch):
    """At a terminal the first Ctrl-C offers a moment for a second one, which scancels the jobs."""
    monkeypatch.setattr("aid2e.loop.second_press_grace", lambda: 5.0)
    script = tmp_path / "slow.sh"
    script.write_text("sleep 300\n")
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00")
    scheduler = aid2e.AxScheduler(ax_client("interrupt"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "max_parallel_trials": 2})
    scheduler.set_script_objective(str(script))
    _sigint_when_running(scheduler.experiment_dir, jobs=2, presses=2)
    with pytest.raises(CampaignInterrupted, match=r"2 running trial\(s\) canceled"):
        scheduler.run_optimization(max_trials=10)
    assert len(scheduler.trials) == 2  # nothing launched after the first Ctrl-C
    assert [scheduler.experiment.trials[i].status.name for i in scheduler.trials] == ["ABANDONED"] * 2
    for record in scheduler.trials.values():  # scancel was sent; Slurm confirms within seconds
        deadline = time.time() + 20
        while True:
            shown = subprocess.run(["scontrol", "show", "job", record.handle.native_id],
                                   capture_output=True, text=True).stdout
            if "JobState=CANCELLED" in shown or time.time() > deadline:
                break
            time.sleep(0.5)
        assert "JobState=CANCELLED" in shown


@pytest.mark.timeout(400)
def test_time_limit_is_the_failure_reason(slurm_cluster, tmp_path):
    """Slurm kills a job at its time limit (about a minute late here); the trial says so."""
    script = tmp_path / "slow.sh"
    script.write_text("sleep 600\n")
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:00:05",
                         config={"status_grace": 5})
    scheduler = aid2e.AxScheduler(ax_client("walltime"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 2,
                                   "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    trial = scheduler.experiment.trials[0]
    assert trial.status.name == "FAILED"
    assert "time limit" in trial.status_reason, trial.status_reason


def test_restarted_controller_follows_the_same_slurm_jobs(slurm_cluster, tmp_path):
    """A controller that dies leaves its jobs running; a new one loads the run directory and
    follows them by job id instead of submitting them again."""
    script = tmp_path / "job.sh"
    script.write_text('sleep 4\necho \'{"objective": 0.25}\' > "$AID2E_RESULT_FILE"\n')
    config = {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1}
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00")

    def crash(handles, timeout):
        raise RuntimeError("controller lost")

    runner.wait = crash
    first = aid2e.AxScheduler(ax_client("restart"), runner, config)
    first.set_script_objective(str(script))
    with pytest.raises(RuntimeError, match="controller lost"):
        first.run_optimization(max_trials=3)
    job_ids = {i: r.handle.native_id for i, r in first.trials.items()}
    assert len(job_ids) == 3

    second = aid2e.AxScheduler(None, SlurmRunner(partition=slurm_cluster["partition"]), config)
    second.load_experiment(str(first.experiment_dir))
    second.set_script_objective(str(script))
    assert {i: r.status for i, r in second.trials.items()} == {0: "RUNNING", 1: "RUNNING", 2: "RUNNING"}
    second.run_optimization(max_trials=0)
    assert [t.status.name for t in second.experiment.trials.values()] == ["COMPLETED"] * 3
    assert {i: r.handle.native_id for i, r in second.trials.items()} == job_ids  # no resubmission
    assert observed(second) == {0: 0.25, 1: 0.25, 2: 0.25}


def test_job_canceled_outside_aid2e_fails_with_the_reason(slurm_cluster, tmp_path):
    """An administrator's (or user's) scancel ends the trial as FAILED, saying it was canceled."""
    script = tmp_path / "slow.sh"
    script.write_text("sleep 300\n")
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:10:00", config={"status_grace": 5})
    original_wait = runner.wait
    canceled = []

    def wait(handles, timeout):
        running = [h for h in handles if (Path(h.workdir) / "aid2e_status.json").exists()]
        if running and not canceled:
            canceled.append(running[0].native_id)
            subprocess.run(["scancel", running[0].native_id], check=True)
        return original_wait(handles, min(timeout, 0.5))

    runner.wait = wait
    scheduler = aid2e.AxScheduler(ax_client("scancel"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1,
                                   "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    trial = scheduler.experiment.trials[0]
    assert canceled == [scheduler.trials[0].handle.native_id]
    assert trial.status.name == "FAILED"
    assert "canceled outside aid2e" in trial.status_reason, trial.status_reason


def test_adopt_finds_a_finished_job_that_left_the_queue(slurm_cluster, tmp_path, monkeypatch):
    """A controller saved trial 0's record, submitted its job and died before saving the handle;
    the job ran to its end and left squeue (MinJobAge: 300 s here, so the queue's forgetting is
    injected: an `squeue` first on PATH that lists nothing). adopt() finds the job by the batch id
    its launcher recorded under the attempt's token, its result is read, nothing is resubmitted
    and the result file stays. A directory prepared under another token is not adopted."""
    from aid2e.jobs import script as script_kind
    from aid2e.types import JobRequest

    script = tmp_path / "objective.sh"
    script.write_text('echo \'{"objective": 4.5}\' > "$AID2E_RESULT_FILE"\n')
    runner = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:05:00")
    request = JobRequest(experiment="aged", trial_index=0, parameters={"x": 0.5}, job=script_kind.script_job(script),
                         workdir=str(tmp_path / "trial_0"), token="attempt-token")
    submitted = runner.submit(request)
    deadline = time.monotonic() + 120
    while not script_kind.ended_under(request.workdir, request.token):
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)
    forgetful = tmp_path / "bin"
    forgetful.mkdir()
    (forgetful / "squeue").write_text("#!/bin/sh\nexit 0\n")
    (forgetful / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{forgetful}:{os.environ['PATH']}")
    restarted = SlurmRunner(partition=slurm_cluster["partition"], time_limit="00:05:00")
    adopted = restarted.adopt(request)
    assert adopted is not None and adopted.native_id == submitted.native_id
    token_handle = attrs.evolve(adopted, extra={**adopted.extra, "token": request.token})
    assert restarted.poll([token_handle])[adopted.native_id] is JobState.COMPLETED
    result = restarted.result(token_handle)
    assert result.state is JobState.COMPLETED and result.metrics["objective"].mean == 4.5
    assert (tmp_path / "trial_0" / "result.json").exists()
    assert restarted.adopt(attrs.evolve(request, token="another-attempt")) is None
