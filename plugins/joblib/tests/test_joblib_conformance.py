"""The backend conformance suite, run against the joblib backend (loky and threading executors)."""

from __future__ import annotations

from aid2e.testing import BackendConformance
from aid2e_joblib import JobLibRunner


class TestJobLibLokyConformance(BackendConformance):
    def make_backend(self) -> JobLibRunner:
        return JobLibRunner(n_jobs=4, pool="loky")


class TestJobLibThreadingConformance(BackendConformance):
    def make_backend(self) -> JobLibRunner:
        return JobLibRunner(n_jobs=4, pool="threading")
