"""Trials made of stages (aid2e.workflow): the description checked when built, and each stage's
jobs planned and named from their fan-out values."""

from __future__ import annotations

import pytest

from aid2e.errors import ConfigError
from aid2e.workflow import Stage, Workflow, fill_argv, job_name, placeholders, plan


def aggregate(inputs):
    return {"loss": 1.0}


def drich() -> Workflow:
    return Workflow([
        Stage("geometry", script=["bash", "geo.sh"], exit_codes={9: "penalty"}),
        Stage("simulate", script=["bash", "sim.sh", "--particle", "{particle}", "--eta", "{eta}"],
              fan_out={"particle": ["pi+", "kaon+"], "eta": [1.5, 2.5]},
              resources={"cpus": 1, "memory": "4G", "walltime": "04:00:00"}),
        Stage("reconstruct", script=["bash", "rec.sh"], per="simulate"),
        Stage("analyze", function=aggregate),
    ])


def test_the_drich_shaped_plan():
    jobs = plan(drich())
    assert [len(jobs[s]) for s in ("geometry", "simulate", "reconstruct", "analyze")] == [1, 4, 4, 1]
    assert [j.name for j in jobs["simulate"]] == ["particle=pi+,eta=1.5", "particle=pi+,eta=2.5",
                                                  "particle=kaon+,eta=1.5", "particle=kaon+,eta=2.5"]
    assert [j.fan_out for j in jobs["reconstruct"]] == [j.fan_out for j in jobs["simulate"]]  # one2one
    assert jobs["analyze"][0].name == "job" and jobs["analyze"][0].fan_out == {}


def test_a_list_of_dicts_fans_out_as_given():
    stage = Stage("s", script=["x"], fan_out=[{"energy": 1}, {"energy": 5}, {"energy": 10}])
    assert [j.name for j in plan(Workflow([stage]))["s"]] == ["energy=1", "energy=5", "energy=10"]


def test_job_names_are_distinct_and_stay_in_their_stage_directory():
    assert job_name({"path": "a/b"}) == "path=a%2Fb"
    assert job_name({"a": "1,b=2"}) == "a=1%2Cb%3D2" != job_name({"a": "1", "b": "2"}) == "a=1,b=2"
    assert job_name({"a": ".."}) == "a=.." and job_name({"a": ""}) == "a=" and job_name({"a": "%"}) == "a=%25"
    with pytest.raises(ConfigError, match="repeats a combination"):
        Workflow([Stage("s", script=["x"], fan_out=[{"a": 1}, {"a": 1}])])


@pytest.mark.parametrize("make, message", [
    (lambda: Stage("s"), "stage 's': give exactly one of function, script or container (got none)"),
    (lambda: Stage("s", script=["x"], function=aggregate), "(got function, script)"),
    (lambda: Stage("a/b", script=["x"]), "stage 'a/b': name: 'a/b' must be a non-empty name usable as a directory"),
    (lambda: Stage("..", script=["x"]), "usable as a directory"),
    (lambda: Stage("s", script=["x"], fan_out={"e": []}), "fan_out: 'e' must be a non-empty list"),
    (lambda: Stage("s", script=["x"], fan_out={"e": "123"}), "fan_out: 'e' must be a non-empty list"),
    (lambda: Stage("s", script=["x"], fan_out={"e-v": [1]}), "names must be identifiers"),
    (lambda: Stage("s", script=["x"], fan_out=[{"a": 1}, {"b": 2}]), "every dict names the same keys"),
    (lambda: Stage("s", script=["x"], fan_out=5), "must be a dict of lists or a non-empty list of dicts"),
    (lambda: Stage("s", script=["x"], fan_out={"a": [1]}, per="t"), "remove fan_out"),
    (lambda: Stage("s", script=["x"], exit_codes={9: "retry"}),
     "exit_codes.9: must be one of penalty, infeasible, fail, got 'retry'"),
    (lambda: Stage("s", script=["x"], exit_codes={0: "fail"}), "exit_codes: 0 is not an exit code 1 to 255"),
    (lambda: Workflow([]), "needs at least one Stage"),
    (lambda: Workflow([Stage("s", script=["x"]), Stage("s", script=["y"])]), "stage 's': name: 's' names two stages"),
    (lambda: Workflow([Stage("r", script=["x"], per="sim"), Stage("sim", script=["y"])]),
     "stage 'r': per: 'sim' names no earlier stage (earlier: none)"),
    (lambda: Workflow(["geo.sh"]), "a Workflow holds Stage objects, got str"),
])
def test_a_bad_workflow_is_one_line_naming_the_stage(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_argv_is_filled_element_by_element_never_through_a_shell():
    argv = ["sim.sh", "--particle", "{particle}", "--eta={eta}", "$(rm -rf /) {{literal}}", "{x}"]
    assert placeholders(argv) == {"particle", "eta", "x"}
    filled = fill_argv(argv, {"particle": "pi+; touch pwned", "eta": 1.5, "x": 0.25})
    assert filled == ["sim.sh", "--particle", "pi+; touch pwned", "--eta=1.5", "$(rm -rf /) {literal}", "0.25"]
    with pytest.raises(ConfigError, match=r"names \{energy\}, which is neither a trial parameter nor a fan-out"):
        fill_argv(["{energy}"], {"x": 1})
    with pytest.raises(ConfigError, match="unmatched"):
        fill_argv(["{oops"], {})



def test_every_problem_of_a_workflow_is_found_with_its_stage_and_key():
    """workflow_problems is the one set of rules: the Python API raises the first problem, a
    campaign file's validator lists them all with key paths (trial.stages[i].key)."""
    from aid2e.workflow import StageProblem, workflow_problems

    stages = [
        {"name": "geo", "script": ["geo.sh"], "exit_codes": {9: "retry"}},
        {"name": "sim", "script": ["sim", "{particle}", "{energy}"], "fan_out": {"particle": ["pi+", "K+"], "x": [1]}},
        {"name": "sim", "function": "m:f"},
        {"name": "rec", "script": ["rec"], "per": "simul"},
        {"name": "ana", "function": "m:f", "per": "sim"},
    ]
    assert workflow_problems(stages, ["x", "y"], to_run=True) == [
        StageProblem(0, "geo", "exit_codes.9", "must be one of penalty, infeasible, fail, got 'retry'"),
        StageProblem(1, "sim", "fan_out", "x is also a trial parameter: rename the fan-out value"),
        StageProblem(1, "sim", "script", "argv element '{energy}' names {energy}, which is neither a trial parameter "
                                         "nor a fan-out value of this stage (known: particle, x, y)"),
        StageProblem(2, "sim", "name", "'sim' names two stages: stage names must be unique"),
        StageProblem(3, "rec", "per", "'simul' names no earlier stage (earlier: geo, sim)"),
        StageProblem(4, "ana", "", "the last stage gives the trial's metrics, so it runs once: remove its "
                                   "fan_out/per, or add a stage after it that merges its jobs' outputs"),
    ]
    assert workflow_problems(stages[1:2]) == []  # without the trial's parameters, names are not checked
    assert StageProblem(3, "rec", "per", "'simul' names no earlier stage").message() == (
        "stage 'rec': per: 'simul' names no earlier stage")
