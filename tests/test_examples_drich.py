"""The dRICH-shaped examples run as a user runs them (a subprocess, on local cores and on the real
local Slurm), and what they leave is checked: every trial completed, overlaps penalized exactly
when the aerogel does not fit, each objective the separation of the saved simulations' outputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import aid2e

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

from drich_workflow import PENALTY, separation  # noqa: E402


def check_campaign(output: Path, trials: int, simulations_on: str) -> None:
    (where,) = list(output.iterdir())
    scheduler = aid2e.AxScheduler.resume(str(where))
    assert len(scheduler.trials) == trials
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        overlapping = record.parameters["aerogel_thickness"] > 5.0
        assert record.penalized == overlapping
        if overlapping:
            assert {m: v.mean for m, v in record.metrics.items()} == PENALTY
            assert record.jobs["overlaps/job"].status == "FAILED"
            continue
        simulations = [job for job in record.jobs.values() if job.stage == "simulate"]
        assert {job.handle.backend for job in simulations} == {simulations_on}
        inputs = {"simulate": [{"fan_out": job.fan_out, "result": job.output} for job in simulations]}
        assert {m: (v.mean, v.sem) for m, v in record.metrics.items()} == separation(inputs)
        copy = Path(record.jobs["geometry/job"].output["compact"])
        assert f'value="{record.parameters["aerogel_thickness"]!r}*cm"' in copy.read_text()


def run_example(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(600)
def test_the_drich_example_runs_on_local_cores(tmp_path):
    out = run_example("drich_workflow.py", "--trials", "8", "--events", "100", "--output", str(tmp_path))
    assert "8 trials (8 completed" in out and "Pareto trial" in out
    check_campaign(tmp_path, 8, "joblib")


@pytest.mark.timeout(600)
def test_the_drich_example_runs_its_simulations_on_slurm(tmp_path):
    from aid2e_psij.testing import require_slurm

    partition = require_slurm()["partition"]
    out = run_example("drich_workflow_slurm.py", "--partition", partition, "--trials", "4", "--events", "100",
                      "--output", str(tmp_path))
    assert "4 trials (4 completed" in out
    check_campaign(tmp_path, 4, "slurm")


def copy_example(tmp_path: Path) -> Path:
    """examples/drich/ copied (a run writes its campaign next to the file, never into the sources)."""
    import shutil

    where = tmp_path / "drich"
    shutil.copytree(EXAMPLES / "drich", where, ignore=shutil.ignore_patterns("aid2e_jobs", "__pycache__"))
    return where


def aid2e_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "aid2e", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(600)
def test_the_drich_campaign_file_runs_on_local_cores(tmp_path):
    where = copy_example(tmp_path)
    for name in ("campaign.yaml", "campaign_slurm.yaml"):
        assert "valid" in aid2e_cli("validate", str(EXAMPLES / "drich" / name))
    out = aid2e_cli("run", str(where / "campaign.yaml"), "--max-trials", "6")
    trials = aid2e.AxScheduler.resume(str(where / "aid2e_jobs" / "drich-toy")).trials.values()
    penalized = sum(r.penalized for r in trials)
    assert (f"6 completed ({penalized} penalized), 0 failed" if penalized else "6 completed, 0 failed") in out, out
    check_campaign(where / "aid2e_jobs", 6, "joblib")


@pytest.mark.timeout(600)
def test_the_drich_campaign_file_runs_its_simulations_on_slurm(tmp_path):
    from aid2e_psij.testing import require_slurm

    partition = require_slurm()["partition"]
    where = copy_example(tmp_path)
    text = (where / "campaign_slurm.yaml").read_text()
    assert "partition: debug," in text
    (where / "campaign_slurm.yaml").write_text(text.replace("partition: debug,", f"partition: {partition},"))
    out = aid2e_cli("run", str(where / "campaign_slurm.yaml"), "--max-trials", "3")
    assert re.search(r"^3 completed( \(\d penalized\))?, 0 failed", out, re.MULTILINE), out
    check_campaign(where / "aid2e_jobs", 3, "slurm")
