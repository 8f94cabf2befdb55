"""Fixtures for the PSI/J backend's tests: the real local Slurm cluster, or a clear skip.

scripts/services/slurm.sh (run by the README's test command) installs and starts a single-node
Slurm and writes /run/aid2e-slurm.env. Where it started Slurm, or where ``AID2E_REQUIRE``
names slurm (CI), a cluster that does not answer is a test failure, not a skip; elsewhere (not
root, no apt) the Slurm tests skip with the reason (see :func:`aid2e_psij.testing.require_slurm`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aid2e_psij.testing import require_slurm


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The cluster's facts (partition, node); skips or fails as the module docstring says."""
    return require_slurm()


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
    monkeypatch.setenv("PATH", f"{shim_dir}:{Path(real).parent}:" + os.environ["PATH"])

    def count() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    return count
