"""Skip a test whose engine is missing, or fail it where CI promised the engine.

``AID2E_REQUIRE`` (space- or comma-separated, e.g. ``"slurm podman docker"``) names what the
environment must provide; ``.ci/run`` sets it, so there a missing Slurm or podman fails the run
instead of silently skipping its tests. Elsewhere (a laptop without root) they skip with the reason.
"""

from __future__ import annotations

import os

import pytest

ENV = "AID2E_REQUIRE"


def required() -> set[str]:
    return {n for n in os.environ.get(ENV, "").replace(",", " ").split() if n}


def require(name: str, available: bool, reason: str) -> None:
    """Return if ``available``; else fail when ``name`` is required, skip otherwise."""
    if available:
        return
    if name in required():
        pytest.fail(f"{name} is required here ({ENV}) but unavailable: {reason}")
    pytest.skip(reason)
