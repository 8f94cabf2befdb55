"""Fixtures for the PSI/J backend's tests: the real local Slurm cluster, or a clear skip.

scripts/services/slurm.sh (run by the README's test command) installs and starts a single-node
Slurm and writes /run/aid2e-slurm.env. Where it started Slurm, or where ``AID2E_REQUIRE``
names slurm (CI), a cluster that does not answer is a test failure, not a skip; elsewhere (not
root, no apt) the Slurm tests skip with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aid2e.testing.requirements import require

MARKER = Path("/run/aid2e-slurm.env")


def _slurm_answers() -> str | None:
    """None if squeue and sinfo answer, else why not."""
    if shutil.which("squeue") is None:
        return "squeue not found"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip()}"
    if not any(s in out.stdout for s in ("idle", "mixed", "allocated")):
        return f"no usable Slurm node (sinfo: {out.stdout.strip()!r})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The cluster's facts (partition, node); skips or fails as the module docstring says."""
    problem = _slurm_answers()
    if problem is not None and MARKER.exists():
        pytest.fail(f"scripts/services/slurm.sh started Slurm but it does not answer: {problem}")
    require("slurm", problem is None,
            f"no Slurm cluster ({problem}); run scripts/services/slurm.sh as root to start one")
    facts = dict(line.split("=", 1) for line in MARKER.read_text().split()) if MARKER.exists() else {}
    return {"partition": facts.get("AID2E_SLURM_PARTITION", "debug"), "node": facts.get("AID2E_SLURM_NODE", "")}


@pytest.fixture
def squeue_counter(tmp_path, monkeypatch):
    """Counts squeue calls: a PATH shim logs each call, then runs the real squeue."""
    real = shutil.which("squeue")
    if real is None:
        pytest.skip("squeue not found")
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    log = tmp_path / "squeue.calls"
    shim = shim_dir / "squeue"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}:{Path(real).parent}:" + __import__("os").environ["PATH"])

    def count() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    return count
