"""The core's backend conformance suite on PSI/J: the real local Slurm, and the local executor."""

from __future__ import annotations

import pytest

from aid2e.testing import BackendConformance
from aid2e_psij import PsijRunner


class TestPsijSlurmConformance(BackendConformance):
    job_timeout = 120.0
    cancel_timeout = 20.0

    @pytest.fixture(autouse=True)
    def _needs_slurm(self, slurm_cluster):
        self.partition = slurm_cluster["partition"]

    def make_backend(self) -> PsijRunner:
        return PsijRunner(executor="slurm", queue=self.partition, time_limit="00:10:00",
                          config={"status_grace": 5})


class TestPsijLocalConformance(BackendConformance):
    job_timeout = 60.0

    def make_backend(self) -> PsijRunner:
        return PsijRunner(executor="local", config={"status_grace": 2})
