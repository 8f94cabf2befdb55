"""A workflow stage on PanDARunner (the loopback stand-in server; see test_panda_runner.py for why
no real PanDA server runs here): the job file ships in the sandbox and is found on the "grid
node" through $AID2E_JOB_FILE, upstream outputs arrive inline in it (a grid node does not see the
controller's directories), and the stage's output comes back to the jobs after it."""

from __future__ import annotations

from pathlib import Path

import aid2e
from aid2e.testing.experiments import unit_square_ax_client
from aid2e_panda import PanDARunner

from .conftest import FAST

SIMULATE = """\
import json, os, sys
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
base = job["inputs"]["prepare"][0]["result"]["base"]
json.dump({"value": base * job["fan_out"]["k"], "cwd": os.getcwd()}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def prepare(x, y):
    return {"base": x + 1.0}


def final(x, y, inputs):
    return {"objective": sum(job["result"]["value"] for job in inputs["simulate"])}


def test_a_stage_runs_on_panda_with_its_job_file(server, init_env, tmp_path):
    script = tmp_path / "simulate.py"
    script.write_text(SIMULATE)
    panda = PanDARunner(init_env=init_env, config=FAST)
    local = aid2e.JobLibRunner(n_jobs=2, pool="threading")
    try:
        scheduler = aid2e.AxScheduler(unit_square_ax_client("panda_stage"), local,
                                      {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.2})
        scheduler.set_workflow(aid2e.Workflow([
            aid2e.Stage("prepare", function=prepare),
            aid2e.Stage("simulate", script=str(script), backend=panda, fan_out={"k": [1, 2]}),
            aid2e.Stage("final", function=final)]))
        scheduler.run_optimization(max_trials=2)
    finally:
        local.close()
        panda.close()
    for index, record in scheduler.trials.items():
        assert record.status == "COMPLETED", record.message
        assert record.metrics["objective"].mean == 3 * (record.parameters["x"] + 1.0)
        for k in (1, 2):
            job = record.jobs[f"simulate/k={k}"]
            assert job.handle.backend == "panda"
            assert job.output["value"] == k * (record.parameters["x"] + 1.0)
            assert Path(job.output["cwd"]) != scheduler.trial_dir(index) / "simulate" / f"k={k}"  # a node's scratch
