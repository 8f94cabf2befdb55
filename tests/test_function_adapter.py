"""Function objectives on backends that only run programs (batch systems): the core's
function->script adapter pickles the function into the trial directory and a job runs it."""

from __future__ import annotations

import threading

import pytest

import aid2e
from aid2e_joblib import JobLibRunner


class ScriptOnlyRunner(JobLibRunner):
    """The joblib backend restricted to script jobs, as a batch backend is."""

    kinds = frozenset({"script"})


def paraboloid(parameterization):
    return {"objective": (parameterization["x"] - 0.5) ** 2 + (parameterization["y"] - 0.5) ** 2}


def test_function_runs_as_a_script_job_with_exact_values(make_ax_client, config):
    with ScriptOnlyRunner(n_jobs=3) as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("adapted"), runner, config)
        offset = 0.125  # a closure: cloudpickle ships it by value

        scheduler.set_objective_function(lambda x, y: {"objective": x * y + offset})
        scheduler.run_optimization(max_trials=4)
    df = scheduler.experiment.lookup_data().df
    assert len(df) == 4
    for _, row in df.iterrows():
        params = scheduler.experiment.trials[int(row.trial_index)].arm.parameters
        assert row["mean"] == params["x"] * params["y"] + offset
        assert (scheduler.trial_dir(int(row.trial_index)) / "aid2e_function.pkl").is_file()
    assert all(r.handle.extra["kind"] == "script" for r in scheduler.trials.values())


def test_function_failure_in_a_batch_job_carries_the_exception(make_ax_client, config):
    def broken(x, y):
        raise ArithmeticError(f"no convergence at x={x:.2f}")

    with ScriptOnlyRunner(n_jobs=2) as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("adapted_fail"), runner,
                                      {**config, "tolerated_failure_rate": 1.0})
        scheduler.set_objective_function(broken)
        scheduler.run_optimization(max_trials=2)
    for trial in scheduler.experiment.trials.values():
        assert trial.status.name == "FAILED"
        assert "ArithmeticError: no convergence at x=" in trial.status_reason


def test_unpicklable_function_is_refused_before_any_trial(make_ax_client, config):
    lock = threading.Lock()

    def holds_a_lock(x, y):
        with lock:
            return {"objective": x}

    with ScriptOnlyRunner(n_jobs=1) as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("unpicklable"), runner, config)
        with pytest.raises(aid2e.ConfigError, match="cannot be serialised for a batch job"):
            scheduler.set_objective_function(holds_a_lock)
        assert len(scheduler.experiment.trials) == 0


def test_a_runner_without_function_or_adapter_is_refused(make_ax_client, config, plugin_manager):
    """With the adapter unregistered, a script-only backend cannot take function objectives."""
    plugin_manager.unregister("aid2e (builtins)")
    with ScriptOnlyRunner(n_jobs=1) as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("no_adapter"), runner, config)
        with pytest.raises(aid2e.ConfigError, match="cannot run function jobs .* no installed plugin adapts them"):
            scheduler.set_objective_function(paraboloid)
