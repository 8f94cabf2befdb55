"""``status()``, the line ``aid2e validate`` shows for a batch backend: on the real local Slurm
(its partitions as they are, one set down with scontrol, its node set down), and, for what a
working cluster cannot show (no sinfo, a controller that does not answer or fails), with a
``sinfo`` on PATH that behaves so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aid2e_psij import PsijRunner, SlurmRunner, executors
from aid2e_psij.testing import node_down

pytestmark = pytest.mark.timeout(300)


def test_a_partition_that_is_up_is_ready(slurm_cluster):
    status = SlurmRunner(partition=slurm_cluster["partition"]).status()
    assert status.startswith(f"ready, partition {slurm_cluster['partition']} up, nodes: 1 "), status


def test_without_a_partition_the_default_partitions_status(slurm_cluster):
    default = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True, timeout=30)
    (name,) = [p[:-1] for p in default.stdout.split() if p.endswith("*")]
    assert SlurmRunner().status().startswith(f"ready, partition {name} (the default) up, nodes: 1 ")


def test_a_partition_that_does_not_exist_names_those_that_do(slurm_cluster):
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True, timeout=30)
    known = ", ".join(sorted(p.rstrip("*") for p in names.stdout.split()))
    assert SlurmRunner(partition="nope").status() == f"not ready: no partition 'nope' (partitions: {known})"


def test_a_partition_set_down_is_not_ready(slurm_cluster):
    spare = "short"  # scripts/services/slurm.sh's second partition; no other test uses it
    update = ["scontrol", "update", f"partitionname={spare}"]
    subprocess.run([*update, "state=down"], check=True, capture_output=True, timeout=30)
    try:
        status = SlurmRunner(partition=spare).status()
    finally:
        subprocess.run([*update, "state=up"], check=True, capture_output=True, timeout=30)
    assert status.startswith(f"not ready: partition {spare} down, nodes: 1 ") and \
        status.endswith("(jobs wait until it is up)"), status
    assert SlurmRunner(partition=spare).status().startswith(f"ready, partition {spare} up")


def test_a_partition_whose_node_is_down_is_not_ready(slurm_cluster):
    if not slurm_cluster["node"]:
        pytest.skip("the node's name is known only where scripts/services/slurm.sh started Slurm")
    with node_down(slurm_cluster["node"], "aid2e-test-status"):
        status = SlurmRunner(partition=slurm_cluster["partition"]).status()
    assert status.startswith(f"not ready: partition {slurm_cluster['partition']} up, nodes: 1 down"), status
    assert status.endswith("(no node can run a job now)")


def fake_sinfo(folder: Path, monkeypatch, body: str) -> None:
    script = folder / "sinfo"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_without_sinfo_it_says_where_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert SlurmRunner(partition="debug").status() == (
        "not ready: sinfo is not on PATH (run where Slurm's commands are)")


def test_a_controller_that_cannot_be_reached(tmp_path, monkeypatch):
    fake_sinfo(tmp_path, monkeypatch, "echo 'slurm_load_partitions: Unable to contact slurm controller "
                                      "(connect failure)' >&2; exit 1")
    assert SlurmRunner(partition="debug").status() == (
        "not ready: sinfo failed: slurm_load_partitions: Unable to contact slurm controller (connect failure)")


def test_a_controller_that_does_not_answer_is_not_waited_for(tmp_path, monkeypatch):
    fake_sinfo(tmp_path, monkeypatch, "exec sleep 600")
    monkeypatch.setattr(executors, "STATUS_TIMEOUT", 0.5)
    assert SlurmRunner(partition="debug").status() == "not ready: sinfo did not answer in 0.5 s (is slurmctld up?)"


def test_other_batch_systems_need_their_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert PsijRunner(executor="pbs").status() == "not ready: qstat is not on PATH (no pbs here?)"
    fake_sinfo(tmp_path, monkeypatch, "exit 0")
    (tmp_path / "bqueues").write_bytes((tmp_path / "sinfo").read_bytes())
    (tmp_path / "bqueues").chmod(0o755)
    assert PsijRunner(executor="lsf").status() == f"ready, bqueues at {tmp_path / 'bqueues'}"
    assert PsijRunner(executor="local").status() == "ready, local processes"
