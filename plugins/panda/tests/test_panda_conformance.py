"""The core's backend conformance suite, run against PanDARunner and the loopback PanDA stand-in.

The stand-in (:mod:`aid2e_panda.testing`) replaces a real PanDA server, which cannot run here (no
published database schema, JEDI needs Rucio, ...). For this suite its pilot runs each job in the
trial directory itself, as a site that mounts the controller's file system would: the suite
checks files a job writes there while it runs (heartbeats, the working directory). Results still
travel back only as the job's user metadata (see test_panda_runner.py for jobs run elsewhere).
"""

from __future__ import annotations

import pytest

from aid2e.testing import BackendConformance
from aid2e_panda import PanDARunner

from .conftest import FAST


class TestPanDAConformance(BackendConformance):
    job_timeout = 60.0

    @pytest.fixture(autouse=True)
    def _grid(self, server, init_env):
        server.shared_fs = True
        self._init_env = init_env
        yield
        server.shared_fs = False

    def make_backend(self) -> PanDARunner:
        return PanDARunner(init_env=self._init_env, config=FAST)
