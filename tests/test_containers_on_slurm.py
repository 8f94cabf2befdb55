"""A container objective through SlurmRunner on the real local Slurm: the container kind adapts
itself into a script job and the batch job runs the engine on the compute node (no backend
special-cases containers). Needs scripts/services/slurm.sh and scripts/services/containers.sh."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import aid2e
from aid2e.testing.requirements import require

STATE_FILE = Path(os.environ.get("AID2E_CONTAINERS_STATE", "/var/lib/aid2e-containers/state.json"))
#: Reads params.json and writes x + y with busybox awk (17 digits: the doubles come back exactly).
SUM_AWK = (
    'BEGIN { RS = "\\001" } '
    '{ s = $0; gsub(/[{} "\\n]/, "", s); n = split(s, kv, ","); '
    '  for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] + 0 } '
    '  printf "{\\"objective\\": %.17g}\\n", v["x"] + v["y"] > ENVIRON["AID2E_RESULT_FILE"] }'
)


@pytest.fixture
def podman_image():
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        state = {}
    require("podman", state.get("podman", f"no {STATE_FILE}: run scripts/services/containers.sh") == "ok",
            f"podman is not usable here: {state.get('podman', 'containers.sh has not run')}")
    return state.get("image", "localhost/aid2e-test:latest")


@pytest.fixture
def slurm_partition():
    from aid2e_psij.testing import require_slurm

    return require_slurm()["partition"]


@pytest.mark.timeout(300)
def test_container_objective_runs_as_slurm_jobs(make_ax_client, podman_image, slurm_partition, tmp_path):
    from aid2e_psij import SlurmRunner

    runner = SlurmRunner(partition=slurm_partition, time_limit="00:10:00",
                         config={"max_in_flight": 3})
    scheduler = aid2e.AxScheduler(make_ax_client("container_on_slurm"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1})
    scheduler.set_container_objective(container_image=podman_image, container_command=["awk", SUM_AWK, "params.json"],
                                      engine="podman")
    scheduler.run_optimization(max_trials=3)
    df = scheduler.experiment.lookup_data().df
    assert len(df) == 3
    for _, row in df.iterrows():
        params = scheduler.experiment.trials[int(row.trial_index)].arm.parameters
        assert row["mean"] == params["x"] + params["y"]
    for record in scheduler.trials.values():
        assert record.handle.backend == "slurm" and record.handle.native_id.isdigit()  # a Slurm job id
        assert record.handle.extra["container_image"] == podman_image
        assert record.handle.extra["container_image_id"]
        command = json.loads((Path(record.handle.workdir) / "aid2e_command.json").read_text())["argv"]
        assert command[0].endswith("podman") and "run" in command
