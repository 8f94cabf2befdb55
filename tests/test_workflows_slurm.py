"""The dRICH-shaped toy with its simulations as jobs of the real local Slurm (the other stages on
local threads): 20 trials with exact values and penalized overlaps, every simulation in Slurm's
job completion log; and a controller SIGKILLed while the Slurm fan-out runs, then resumed, with
no job run twice. Needs scripts/services/slurm.sh (the README's test command runs it)."""

from __future__ import annotations

import os
import subprocess

import pytest
from drich_toy import PENALTY, make_runner, workflow, write_scripts
from test_workflow_resume import controller, kill_while_simulations_run, resume_and_check
from test_workflows import check_toy_campaign, runs

import aid2e
from aid2e.testing.experiments import unit_square_ax_client


@pytest.fixture
def partition():
    from aid2e_psij.testing import require_slurm

    return require_slurm()["partition"]


def slurm_completed_jobs(ids: set[str]) -> dict[str, str]:
    """Slurm's own record of how each job in ``ids`` ended (``sacct -c``: the job completion log)."""
    out = subprocess.run(["sacct", "-c", "-n", "-P", "-o", "JobID,State", "-j", ",".join(sorted(ids))],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {line.split("|")[0]: line.split("|")[1] for line in out.splitlines() if "|" in line}


@pytest.mark.timeout(900)
def test_the_drich_toy_fans_out_on_slurm(partition, tmp_path):
    from aid2e_joblib import JobLibRunner

    scripts = write_scripts(tmp_path / "scripts")
    runs_log = tmp_path / "runs.log"
    slurm = make_runner(f"slurm:{partition}")
    local = JobLibRunner(n_jobs=4, pool="threading")
    try:
        scheduler = aid2e.AxScheduler(unit_square_ax_client("drich_slurm", objectives=("sep", "acc")), local, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "penalty": PENALTY,
            "max_parallel_trials": 4})
        scheduler.set_workflow(workflow(scripts, runs_log, simulate_on=slurm))
        scheduler.run_optimization(max_trials=20)
    finally:
        local.close()
    check_toy_campaign(scheduler, runs_log, 20)
    simulations = [job for record in scheduler.trials.values() for job in record.jobs.values()
                   if job.stage == "simulate" and job.status == "COMPLETED"]
    assert len(simulations) == 4 * sum(1 for r in scheduler.trials.values() if not r.penalized)
    assert all(job.handle.backend == "slurm" and job.handle.native_id.isdigit() for job in simulations)
    ids = {job.handle.native_id for job in simulations}
    assert slurm_completed_jobs(ids) == dict.fromkeys(ids, "COMPLETED")
    others = [job for record in scheduler.trials.values() for job in record.jobs.values()
              if job.stage != "simulate" and job.handle is not None]
    assert {job.handle.backend for job in others} == {"joblib"}
    assert max(runs(runs_log).values()) == 1


@pytest.mark.timeout(900)
def test_a_killed_controller_resumes_slurm_fan_out_jobs_without_running_one_twice(partition, tmp_path):
    simulate_on = f"slurm:{partition}"
    proc = controller("start", tmp_path, simulate_on)
    kill_while_simulations_run(tmp_path, proc, simulations=5)
    resume_and_check(tmp_path, simulate_on)


def simulate_step(x, y, particle, eta):
    """A MultiStepsFunction step run as a Slurm job: pickled, run by aid2e.jobs.run_function there."""
    return {"value": x * eta + (1.0 if particle == "pi+" else 2.0) * y, "host_job": os.environ.get("SLURM_JOB_ID")}


def analyze_step(x, y, parent_result_parameter):
    values = [result["value"] for result in parent_result_parameter.values()]
    return {"objective": sum(values) / len(values)}


@pytest.mark.timeout(600)
def test_a_multi_steps_function_with_a_step_on_slurm(partition, tmp_path):
    """The older scheduler's style, one step on the cluster: its function jobs are Slurm jobs and
    their return values (not metrics) reach the final step."""
    from aid2e_joblib import JobLibRunner
    from scheduler import AxScheduler, MultiStepsFunction
    from scheduler.job.job import JobType

    slurm = make_runner(f"slurm:{partition}")
    local = JobLibRunner(n_jobs=2, pool="threading")
    try:
        scheduler = AxScheduler(unit_square_ax_client("multi_steps_slurm"), local,
                                {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1})
        scheduler.set_objective_function(MultiStepsFunction(
            objective_funcs={"simulate": {"func": simulate_step, "job_type": JobType.FUNCTION, "runner": slurm},
                             "analyze": {"func": analyze_step, "runner": None}},
            deps={"analyze": {"parent": "simulate", "dep_map": "all2one"}},
            global_parameters={"particle": ["pi+", "kaon+"], "eta": [1.5, 2.5]},
            global_parameters_steps=["simulate"]))
        scheduler.run_optimization(max_trials=2)
    finally:
        local.close()
    for record in scheduler.trials.values():
        x, y = record.parameters["x"], record.parameters["y"]
        assert record.status == "COMPLETED", record.message
        want = [x * eta + k * y for k in (1.0, 2.0) for eta in (1.5, 2.5)]
        assert record.metrics["objective"].mean == pytest.approx(sum(want) / 4, rel=1e-12)
        for job in record.jobs.values():
            if job.stage == "simulate":
                assert job.handle.backend == "slurm" and job.output["host_job"] == job.handle.native_id
