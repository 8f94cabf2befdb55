"""Test helpers for code that needs the real Slurm cluster (scripts/services/slurm.sh).

* :func:`slurm_available` says whether a Slurm cluster answers here and has a usable node;
* :func:`require_slurm` skips the calling test when it does not, or fails it where Slurm was
  promised (``AID2E_REQUIRE`` names slurm, or scripts/services/slurm.sh started it here);
* :func:`node_down` takes a node down for a test and always brings it back.

pytest is imported only by the functions that need it: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Written by scripts/services/slurm.sh when it started Slurm (AID2E_SLURM_PARTITION=..., AID2E_SLURM_NODE=...).
MARKER = Path("/run/aid2e-slurm.env")
#: sinfo node states in which a node runs jobs
USABLE_STATES = ("idle", "mixed", "allocated", "completing")
START_HINT = "run scripts/services/slurm.sh as root to start one"


def slurm_available(timeout: float = 20.0) -> tuple[bool, str]:
    """``(True, "")`` if squeue is installed and sinfo lists a node that can run jobs, else
    ``(False, why not)``."""
    if shutil.which("squeue") is None or shutil.which("sinfo") is None:
        return False, "squeue/sinfo not found"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"sinfo failed: {exc}"
    if out.returncode != 0:
        return False, f"sinfo failed: {out.stderr.strip() or f'exit code {out.returncode}'}"
    states = out.stdout.split()
    if not any(state.rstrip("*~#!%$@^-") in USABLE_STATES for state in states):
        return False, f"no usable Slurm node (sinfo: {out.stdout.strip()!r})"
    return True, ""


def cluster_facts() -> dict[str, str]:
    """The partition and node scripts/services/slurm.sh set up (``debug`` and ``""`` without it)."""
    facts: dict[str, str] = {}
    if MARKER.exists():
        facts = dict(line.split("=", 1) for line in MARKER.read_text().split() if "=" in line)
    return {"partition": facts.get("AID2E_SLURM_PARTITION", "debug"), "node": facts.get("AID2E_SLURM_NODE", "")}


def require_slurm() -> dict[str, str]:
    """Return the cluster's facts (:func:`cluster_facts`) if Slurm answers; else fail the test
    where Slurm was promised (scripts/services/slurm.sh started it, or ``AID2E_REQUIRE``), skip it
    elsewhere."""
    import pytest

    from aid2e.testing.requirements import require

    ok, problem = slurm_available()
    if not ok and MARKER.exists():
        pytest.fail(f"scripts/services/slurm.sh started Slurm but it does not answer: {problem}")
    require("slurm", ok, f"no Slurm cluster ({problem}); {START_HINT}")
    return cluster_facts()


def node_state(node: str) -> str:
    """sinfo's state of ``node`` (e.g. ``idle``, ``down*``, ``drained``), ``""`` if unknown."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    states = out.stdout.split()
    return states[0] if states else ""


def node_usable(node: str) -> bool:
    return node_state(node).rstrip("*~#!%$@^-") in USABLE_STATES


def resume_node(node: str, timeout: float = 60.0) -> None:
    """Bring ``node`` back (``scontrol update state=resume``) and wait until it runs jobs again;
    raise ``RuntimeError`` if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not node_usable(node):
        # "resume" is refused for a node that already came back on its own (ReturnToService=2)
        done = subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            log.debug("scontrol resume %s: %s", node, done.stderr.strip())
        if time.monotonic() > deadline:
            raise RuntimeError(f"Slurm node {node} did not come back within {timeout:g} s "
                               f"(state {node_state(node)!r}); run: scontrol update nodename={node} state=resume")
        time.sleep(0.5)


@contextlib.contextmanager
def node_down(node: str, reason: str = "aid2e-test") -> Iterator[None]:
    """Set ``node`` DOWN (Slurm ends the jobs running there, as when a node fails) and, whatever
    happens in the block, resume it afterwards and wait until it runs jobs again."""
    try:
        done = subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", f"reason={reason}"],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"cannot set Slurm node {node} down: {done.stderr.strip()}")
        log.info("Slurm node %s set down (%s)", node, reason)
        yield
    finally:
        resume_node(node)
        log.info("Slurm node %s is back (%s)", node, node_state(node))
