"""Fixtures for the cross-package tests: Ax experiments (both client APIs) and local runners."""

from __future__ import annotations

import pytest

from aid2e.testing.experiments import sobol_generation_strategy, unit_square_ax_client

pytest_plugins = ["aid2e.testing.fixtures"]


@pytest.fixture
def make_ax_client():
    """``make_ax_client(name, objectives=("objective",), sobol=True)``: an AxClient on x, y in [0, 1]."""

    def make(name="exp", objectives=("objective",), sobol=True, minimize=True):
        return unit_square_ax_client(name, objectives=objectives, sobol=sobol, minimize=minimize, seed=1)

    return make


@pytest.fixture
def make_client():
    """``make_client(name, objective="-objective")``: an ax.Client on x, y in [0, 1]."""

    def make(name="exp", objective="-objective", sobol=True):
        from ax import Client, RangeParameterConfig

        client = Client(random_seed=1)
        client.configure_experiment(
            name=name,
            parameters=[RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0)),
                        RangeParameterConfig(name="y", parameter_type="float", bounds=(0.0, 1.0))],
        )
        client.configure_optimization(objective=objective)
        if sobol:
            client.set_generation_strategy(sobol_generation_strategy())
        return client

    return make


@pytest.fixture
def threads():
    """A JobLibRunner with 4 threads (test functions need not pickle)."""
    from aid2e_joblib import JobLibRunner

    runner = JobLibRunner(n_jobs=4, pool="threading")
    yield runner
    runner.close()


@pytest.fixture
def config(tmp_path):
    return {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 2}
