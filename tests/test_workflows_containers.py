"""The dRICH-shaped toy with its simulations as podman containers (the test image's busybox awk,
the stage script bound read-only into the container): exact values, the job file inside the
container, every container job recorded with its image. Needs scripts/services/containers.sh."""

from __future__ import annotations

import pytest
from drich_toy import PENALTY, expected, workflow, write_scripts
from test_containers_on_slurm import podman_image  # noqa: F401  (a fixture)

import aid2e
from aid2e.testing.experiments import unit_square_ax_client


@pytest.mark.timeout(600)
def test_the_drich_toy_with_container_simulations(podman_image, tmp_path):  # noqa: F811
    from aid2e_joblib import JobLibRunner

    scripts = write_scripts(tmp_path / "scripts")
    container = {"image": podman_image, "engine": "podman", "binds": [f"{tmp_path / 'scripts'}:/scripts:ro"],
                 "command": ["awk", "-v", "particle={particle}", "-v", "eta={eta}", "-f", "/scripts/simulate.awk",
                             "params.json"]}
    runner = JobLibRunner(n_jobs=4, pool="threading")
    try:
        scheduler = aid2e.AxScheduler(unit_square_ax_client("drich_podman", objectives=("sep", "acc")), runner, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "penalty": PENALTY,
            "max_parallel_trials": 3})
        scheduler.set_workflow(workflow(scripts, tmp_path / "runs.log", simulate_container=container))
        scheduler.run_optimization(max_trials=8)
    finally:
        runner.close()
    completed = 0
    for index, record in scheduler.trials.items():
        want = expected(record.parameters["x"], record.parameters["y"])
        assert record.status == "COMPLETED", (index, record.message)
        if want is None:
            assert record.penalized
            continue
        completed += 1
        for metric, (mean, sem) in want.items():
            assert record.metrics[metric].mean == pytest.approx(mean, rel=1e-12)
            assert record.metrics[metric].sem == pytest.approx(sem, rel=1e-9)
        for job in record.jobs.values():
            if job.stage == "simulate":
                assert job.output["job_file"] == "/aid2e/trial/job.json"  # the job file, as the container sees it
                assert job.handle.extra["container_image"] == podman_image
                assert job.handle.extra["container_image_id"]
                x, y = record.parameters["x"], record.parameters["y"]
                k = 1.0 if job.fan_out["particle"] == "pi+" else 2.0
                assert job.output["value"] == x * job.fan_out["eta"] + k * y
    assert completed
