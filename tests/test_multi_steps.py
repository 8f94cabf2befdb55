"""The older scheduler's MultiStepsFunction, written as its users wrote it (imports from
``scheduler``), runs as a workflow of stages: steps on their own runners, fan-out over global
parameters, one2one and all2one parent results, the final step's result as the trial's."""

from __future__ import annotations

import pytest

import aid2e
from aid2e.testing.experiments import unit_square_ax_client


@pytest.fixture
def runners():
    from scheduler import JobLibRunner

    made = [JobLibRunner(n_jobs=2, pool="threading"), JobLibRunner(n_jobs=3, pool="threading")]
    yield made
    for runner in made:
        runner.close()


def simulate(x, y, particle, eta):
    return {"value": x * eta + (1.0 if particle == "pi+" else 2.0) * y}


def reconstruct(x, y, particle, eta, parent_result_parameter):
    return {"reco": 2 * parent_result_parameter["value"] + 0.5, "particle": particle, "eta": eta}


def analyze(x, y, parent_result_parameter):
    recos = {key: result["reco"] for key, result in parent_result_parameter.items()}
    return {"objective": sum(recos.values()) / len(recos), "n_keys": len(recos),
            "pi_15": recos[(("eta", 1.5), ("particle", "pi+"))]}


def test_a_multi_steps_function_runs_as_stages_the_old_way(runners, tmp_path):
    from scheduler import AxScheduler, MultiStepsFunction
    from scheduler.job.job import JobType

    local, other = runners
    function = MultiStepsFunction(
        objective_funcs={
            "simulate": {"func": simulate, "job_type": JobType.FUNCTION, "runner": other},
            "reconstruct": {"func": reconstruct, "runner": None},
            "analyze": {"func": analyze, "runner": None},
        },
        deps={"reconstruct": "simulate", "analyze": {"parent": "reconstruct", "dep_map": "all2one"}},
        global_parameters={"particle": ["pi+", "kaon+"], "eta": [1.5, 2.5]},
        global_parameters_steps=["simulate", "reconstruct"],
    )
    scheduler = AxScheduler(unit_square_ax_client("multi_steps", objectives=("objective",)), local,
                            {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_objective_function(function)
    scheduler.run_optimization(max_trials=3)
    for record in scheduler.trials.values():
        x, y = record.parameters["x"], record.parameters["y"]
        recos = [2 * (x * eta + k * y) + 0.5 for k in (1.0, 2.0) for eta in (1.5, 2.5)]
        assert record.status == "COMPLETED", record.message
        assert record.metrics["objective"].mean == pytest.approx(sum(recos) / 4, rel=1e-12)
        assert sorted(record.jobs) == sorted(
            ["analyze/job"] + [f"{stage}/particle={p},eta={e}" for stage in ("simulate", "reconstruct")
                               for p in ("pi+", "kaon+") for e in (1.5, 2.5)])
        simulate_job = record.jobs["simulate/particle=pi+,eta=1.5"]
        assert simulate_job.output == simulate(x, y, "pi+", 1.5)
        assert simulate_job.handle.workdir.endswith("simulate/particle=pi+,eta=1.5")
    data = scheduler.experiment.lookup_data().df
    assert set(data.metric_name) == {"objective"}  # n_keys and pi_15 are not metrics Ax knows


def test_the_final_step_and_a_script_step(runners, tmp_path):
    from scheduler import AxScheduler
    from scheduler.job.job import JobType
    from scheduler.job.multi_steps_job import MultiStepsFunction

    script = tmp_path / "prepare.py"
    script.write_text("import json, os\np = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
                      "json.dump({'double_x': 2 * p['x']}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")

    def score(x, y, parent_result_parameter):
        return {"objective": parent_result_parameter["double_x"] + y}

    function = MultiStepsFunction(
        objective_funcs={"score": {"func": score, "runner": None},
                         "prepare": {"job_type": JobType.SCRIPT, "script_path": str(script), "runner": None}},
        deps={"score": "prepare"}, final="score")
    scheduler = AxScheduler(unit_square_ax_client("multi_steps_script"), runners[0],
                            {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_objective_function(function)
    scheduler.run_optimization(max_trials=2)
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        assert record.metrics["objective"].mean == 2 * record.parameters["x"] + record.parameters["y"]
        assert list(record.jobs) == ["prepare/job", "score/job"]


@pytest.mark.parametrize("kwargs, message", [
    ({"objective_funcs": {}}, "MultiStepsFunction objective_funcs must be a non-empty dict"),
    ({"objective_funcs": {"a": {"func": simulate}}, "deps": {"a": "b"}}, "MultiStepsFunction deps 'a' -> 'b'"),
    ({"objective_funcs": {"a": {"func": simulate}, "b": {"func": analyze}}, "deps": {"a": "b", "b": "a"}},
     "MultiStepsFunction deps form a cycle"),
    ({"objective_funcs": {"a": {"func": simulate}}, "global_parameters_steps": ["a"]},
     "MultiStepsFunction global_parameters_steps needs global_parameters"),
    ({"objective_funcs": {"a": {"func": 3}}}, "MultiStepsFunction step 'a': 'func' must be callable"),
    ({"objective_funcs": {"a": {"func": simulate, "job_type": "pipeline"}}},
     "MultiStepsFunction step 'a': job_type must be JobType.FUNCTION, SCRIPT or CONTAINER"),
    ({"objective_funcs": {"a": {"func": simulate}, "b": {"func": analyze}}, "deps": {"b": {"parent": "a",
                                                                                            "dep_map": "many"}}},
     "MultiStepsFunction deps 'b': dep_map must be one of one2one, all2one"),
])
def test_a_bad_multi_steps_function_is_one_line(runners, tmp_path, kwargs, message):
    scheduler = aid2e.AxScheduler(unit_square_ax_client("bad_steps"), runners[0],
                                  {"job_output_dir": str(tmp_path / "jobs")})
    with pytest.raises(aid2e.ConfigError) as info:
        scheduler.set_objective_function(aid2e.MultiStepsFunction(**kwargs))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
