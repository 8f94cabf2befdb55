"""No PanDA test depends on how long the suite took to reach it (issue 10, item 15): the tests
that judge credential expiry run again with the clock moved on two hours after collection, as
if a slow machine had spent that long on the tests before them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LATE_CLOCK = """\
import time

_real = time.time


def pytest_collection_finish(session):
    time.time = lambda: _real() + 7200
"""


def test_credential_tests_pass_when_reached_two_hours_after_collection(tmp_path):
    (tmp_path / "late_clock.py").write_text(LATE_CLOCK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "test_panda_runner.py"), "-k", "credentials or token or proxy",
         "-q", "-p", "no:cacheprovider", "-p", "late_clock"],
        cwd=HERE.parents[2], env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "deselected" in proc.stdout
