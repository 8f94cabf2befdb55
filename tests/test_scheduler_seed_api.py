"""The seed README's examples, run against JobLibRunner, with exact results."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import aid2e


def paraboloid(parameterization):
    x, y = parameterization["x"], parameterization["y"]
    return {"objective": (x - 0.5) ** 2 + (y - 0.5) ** 2}


def observed(scheduler):
    df = scheduler.experiment.lookup_data().df
    return {int(r.trial_index): float(r["mean"]) for _, r in df.iterrows()}


def test_old_scheduler_names_are_aid2e_names():
    import scheduler
    from aid2e_joblib import JobLibRunner

    assert scheduler.AxScheduler is aid2e.AxScheduler
    assert scheduler.JobLibRunner is aid2e.JobLibRunner is JobLibRunner
    from scheduler import AxScheduler  # noqa: F401
    from scheduler import JobLibRunner as Old

    assert Old is JobLibRunner


def test_function_objective_best_is_the_observed_minimum(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("seed_function"), threads, config)
    scheduler.set_objective_function(paraboloid)
    best = scheduler.run_optimization(max_trials=10)
    values = observed(scheduler)
    assert len(values) == 10
    for index, value in values.items():
        params = scheduler.experiment.trials[index].arm.parameters
        assert value == paraboloid(params)["objective"]
    best_index = min(values, key=values.get)
    assert best == scheduler.experiment.trials[best_index].arm.parameters


def test_batch_trials_run_in_parallel_with_exact_values(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("seed_batch"), threads, config)
    scheduler.set_objective_function(paraboloid)
    with scheduler.batch_trial_context() as batch:
        batch.add_trial({"x": 0.1, "y": 0.2})
        batch.add_trial({"x": 0.3, "y": 0.4})
        batch.add_trial({"x": 0.5, "y": 0.6})
    assert observed(scheduler) == {
        0: (0.1 - 0.5) ** 2 + (0.2 - 0.5) ** 2,
        1: (0.3 - 0.5) ** 2 + (0.4 - 0.5) ** 2,
        2: (0.5 - 0.5) ** 2 + (0.6 - 0.5) ** 2,
    }
    assert {r.status for r in batch.results.values()} == {"COMPLETED"}
    assert [scheduler.experiment.trials[i].status.name for i in range(3)] == ["COMPLETED"] * 3


def test_batch_rejects_parameters_outside_the_space(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("seed_batch_bad"), threads, config)
    scheduler.set_objective_function(paraboloid)
    with pytest.raises(aid2e.ConfigError, match="outside the search space"):
        with scheduler.batch_trial_context() as batch:
            batch.add_trial({"x": 5.0, "y": 0.2})


def test_script_objective_seed_style(make_ax_client, threads, config, tmp_path):
    """A script in the older scheduler's style: JOB_PARAMS_FILE in, result.json in its directory."""
    script = tmp_path / "my_simulation_script.py"
    script.write_text(textwrap.dedent("""
        import json, os
        p = json.load(open(os.environ["JOB_PARAMS_FILE"]))
        json.dump({"objective": (p["x"] - 0.5) ** 2 + (p["y"] - 0.5) ** 2}, open("result.json", "w"))
    """))
    scheduler = aid2e.AxScheduler(make_ax_client("seed_script"), threads, config)
    scheduler.set_script_objective(str(script))
    best = scheduler.run_optimization(max_trials=6)
    values = observed(scheduler)
    assert len(values) == 6
    for index, value in values.items():
        assert value == paraboloid(scheduler.experiment.trials[index].arm.parameters)["objective"]
        trial_dir = scheduler.trial_dir(index)
        assert json.loads((trial_dir / "params.json").read_text()) == scheduler.experiment.trials[index].arm.parameters
    assert best == scheduler.experiment.trials[min(values, key=values.get)].arm.parameters


def test_shell_script_objective_with_mean_and_sem(make_ax_client, threads, config, tmp_path):
    script = tmp_path / "objective.sh"
    script.write_text(textwrap.dedent(f"""\
        x=$({sys.executable} -c 'import json, os; print(json.load(open(os.environ["AID2E_PARAMS_FILE"]))["x"])')
        echo "{{\\"objective\\": {{\\"mean\\": $x, \\"sem\\": 0.25}}}}" > "$AID2E_RESULT_FILE"
    """))
    scheduler = aid2e.AxScheduler(make_ax_client("seed_sh"), threads, config)
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=3)
    df = scheduler.experiment.lookup_data().df
    for _, row in df.iterrows():
        assert row["mean"] == scheduler.experiment.trials[int(row.trial_index)].arm.parameters["x"]
        assert row["sem"] == 0.25


def test_save_and_load_round_trip_and_continue(make_ax_client, threads, config, tmp_path):
    scheduler = aid2e.AxScheduler(make_ax_client("seed_save"), threads, config)
    scheduler.set_objective_function(paraboloid)
    scheduler.run_optimization(max_trials=4)
    path = tmp_path / "my_experiment.json"
    scheduler.save_experiment(str(path))

    new_scheduler = aid2e.AxScheduler(None, threads, config)
    new_scheduler.load_experiment(str(path))
    assert new_scheduler.experiment.name == "seed_save"
    assert observed(new_scheduler) == observed(scheduler)
    assert {i: r.status for i, r in new_scheduler.trials.items()} == {i: "COMPLETED" for i in range(4)}
    assert {i: r.handle for i, r in new_scheduler.trials.items()} == {i: r.handle for i, r in scheduler.trials.items()}

    new_scheduler.set_objective_function(paraboloid)
    new_scheduler.run_optimization(max_trials=3)
    assert sorted(observed(new_scheduler)) == list(range(7))


def test_container_objective_without_plugin_names_the_distribution(make_ax_client, threads, config,
                                                                    bare_plugin_manager):
    scheduler = aid2e.AxScheduler(make_ax_client("seed_container"), threads, config)
    with pytest.raises(aid2e.PluginNotInstalledError, match="aid2e-containers"):
        scheduler.set_container_objective(container_image="my/simulation:latest",
                                          container_command="python /app/simulate.py")
