"""Every campaign file under examples/ validates, and the demo (``bash scripts/demo.sh``, the
README's first command) runs the calorimeter campaign file as a user runs it: exact values from
the model, the best trial named, the README's copy of the file the file itself.

(The dRICH campaign files run in test_examples_drich.py, on local cores and on the real Slurm.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import aid2e

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FILES = sorted(EXAMPLES.rglob("*.yaml"))
sys.path.insert(0, str(EXAMPLES))

from calorimeter_model import evaluate  # noqa: E402


def test_the_examples_hold_campaign_files():
    assert {p.relative_to(EXAMPLES).as_posix() for p in FILES} >= {
        "calorimeter.yaml", "drich/campaign.yaml", "drich/campaign_slurm.yaml"}


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(EXAMPLES).as_posix() for p in FILES])
def test_every_campaign_file_under_examples_validates(path):
    done = subprocess.run([sys.executable, "-m", "aid2e", "validate", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith(f"{path}: campaign ") and ", valid\n" in done.stdout


@pytest.mark.timeout(600)
def test_the_demo_script_runs_the_calorimeter_campaign_file(tmp_path):
    env = {**os.environ, "AID2E_DEMO_DIR": str(tmp_path / "demo")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--max-trials", "6"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    where = tmp_path / "demo" / "calorimeter"
    scheduler = aid2e.AxScheduler.resume(str(where))
    assert len(scheduler.trials) == 6
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        expected = evaluate(record.parameters["absorber_mm"], record.parameters["scintillator_mm"])
        assert {name: m.mean for name, m in record.metrics.items()} == {"resolution": expected["resolution"]}
    best = min(scheduler.trials.values(), key=lambda r: r.metrics["resolution"].mean)
    assert f"best: trial {best.index}, resolution={best.metrics['resolution'].mean:.6g} (absorber_mm=" in done.stdout
    assert "examples/calorimeter.yaml: campaign 'calorimeter', valid" in done.stdout
    assert f"look at it: .venv/bin/aid2e status {where}" in done.stdout
    assert (where / "campaign.yaml").read_bytes() == (EXAMPLES / "calorimeter.yaml").read_bytes()


def test_the_readmes_demo_block_is_the_demo_file():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Install", 1)[0].split("```yaml\n", 1)[1].split("```", 1)[0]
    text = (EXAMPLES / "calorimeter.yaml").read_text()
    assert block == "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
