"""Campaign files: ``aid2e validate`` on the issue's example file (valid, with a summary), and a
battery of malformed files, each exactly one line ``FILE: key.path: what`` and exit 2, never a
traceback; ``aid2e schema`` prints the schema the validator uses. No Ax import for any of it."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aid2e.cli import main

EXAMPLE = """\
name: drich-toy                    # the campaign directory is <output_dir>/<name>
output_dir: ./campaigns            # default ./aid2e_jobs; relative paths are relative to this file
parameters:
  aerogel_thickness: {bounds: [1.0, 4.0]}            # float range
  n_layers: {bounds: [20, 60], type: int}
  mirror: {choices: [spherical, parabolic]}
  gap: {value: 2.5}                                  # fixed
parameter_constraints: ["aerogel_thickness + gap <= 6.0"]
objectives:
  piKsep_etalow: {direction: maximize, threshold: 3.62}
  acceptance: {direction: maximize, threshold: 0.80}
outcome_constraints: ["cost <= 100"]
optimizer: {initial_trials: 10, method: botorch, seed: 999}   # method: botorch (Ax default) | sobol | random
max_trials: 50
max_parallel_trials: 5
backends:                                            # named runners, any installed backend plugin
  local: {type: joblib, n_jobs: 4}
  cluster: {type: slurm, partition: debug, time_limit: "04:00:00", memory: 4G, cpus_per_task: 1}
trial:                                               # the Workflow of the stages issue, as data
  backend: local
  stages:
    - {name: geometry, script: [bash, geo.sh], exit_codes: {9: penalty}}
    - name: simulate
      backend: cluster
      fan_out: {particle: [pi+, kaon+], eta: [1.5, 2.5]}
      script: [bash, sim.sh, --particle, "{particle}", --eta, "{eta}"]
      resources: {cpus: 1, memory: 4G, walltime: "04:00:00"}
    - {name: analyze, function: "drich_utils:aggregate"}   # resolved next to this file
failure: {policy: penalty, penalty: {piKsep_etalow: 0.0, acceptance: 0.0}, max_failed_trials: 5,
          max_retries: 1, trial_timeout: 14400}
"""


@pytest.fixture
def folder(tmp_path):
    """A directory with the example's scripts and module next to where the file goes."""
    (tmp_path / "geo.sh").write_text("exit 0\n")
    (tmp_path / "sim.sh").write_text("exit 0\n")
    (tmp_path / "drich_utils_cf.py").write_text("def aggregate(inputs):\n    return {}\n")
    return tmp_path


def base() -> dict:
    data = YAML(typ="safe", pure=True).load(EXAMPLE)
    data["trial"]["stages"][2]["function"] = "drich_utils_cf:aggregate"
    return data


def write(folder: Path, data) -> Path:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    path = folder / "campaign.yaml"
    path.write_text(out.getvalue())
    return path


def validate(capsys, path: Path) -> tuple[int, str, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_issues_example_file_is_valid_and_summarized(folder, capsys):
    path = folder / "campaign.yaml"
    path.write_text(EXAMPLE.replace("drich_utils:aggregate", "drich_utils_cf:aggregate"))
    code, out, err = validate(capsys, path)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: campaign 'drich-toy', valid",
        "  parameters (4): aerogel_thickness (range), n_layers (range), mirror (choice), gap (fixed)",
        "  objectives: maximize piKsep_etalow, maximize acceptance",
        "  trial: 3 stages, 6 jobs: geometry x1 on local, simulate x4 on cluster, analyze x1 on local",
        "  backends:",
        f"    local (joblib): ready, 4 worker(s) (loky) on {os.cpu_count()} cores",
        out.splitlines()[-1],
    ]
    # Slurm's own answer (test_the_readmes_campaign_file_runs_on_the_real_slurm checks it where Slurm runs)
    assert re.fullmatch(r"    cluster \(slurm\): (ready, partition debug up, nodes: .+|not ready: .+)",
                        out.splitlines()[-1])


def edit(change):
    def make():
        data = base()
        change(data)
        return data
    return make


def stage(i):
    return lambda d: d["trial"]["stages"][i]


CASES = [
    # (id, mutation of the example, key path, words the line must hold)
    ("unknown-top-key", edit(lambda d: d.update(objectivs={})), "",
     "unknown key 'objectivs' (did you mean 'objectives'?)"),
    ("missing-name", edit(lambda d: d.pop("name")), "", "missing key 'name'"),
    ("missing-parameters", edit(lambda d: d.pop("parameters")), "", "missing key 'parameters'"),
    ("missing-trial", edit(lambda d: d.pop("trial")), "", "missing key 'trial'"),
    ("name-not-text", edit(lambda d: d.update(name=5)), "name", "must be text, got 5"),
    ("empty-name", edit(lambda d: d.update(name="")), "name", "must not be empty"),
    ("parameters-empty", edit(lambda d: d.update(parameters={})), "parameters", "must not be empty"),
    ("parameter-bad-name", edit(lambda d: d["parameters"].update({"2x": {"value": 1}})), "parameters",
     "'2x' is not a name"),
    ("bounds-reversed", edit(lambda d: d["parameters"]["aerogel_thickness"].update(bounds=[4.0, 1.0])),
     "parameters.aerogel_thickness.bounds", "the lower bound 4.0 must be below the upper bound 1.0"),
    ("bounds-one-number", edit(lambda d: d["parameters"]["aerogel_thickness"].update(bounds=[1.0])),
     "parameters.aerogel_thickness.bounds", "must be [low, high], got [1.0]"),
    ("bounds-text", edit(lambda d: d["parameters"]["aerogel_thickness"].update(bounds=[1.0, "b"])),
     "parameters.aerogel_thickness.bounds[1]", "must be a number, got 'b'"),
    ("parameter-two-kinds", edit(lambda d: d["parameters"]["gap"].update(bounds=[0, 1])), "parameters.gap",
     "give exactly one of bounds, choices or value (got bounds, value)"),
    ("parameter-no-kind", edit(lambda d: d["parameters"].update(gap={})), "parameters.gap",
     "give exactly one of bounds, choices or value (got none)"),
    ("parameter-bad-type", edit(lambda d: d["parameters"]["n_layers"].update(type="integer")),
     "parameters.n_layers.type", "must be one of float, int, got 'integer'"),
    ("int-with-fraction", edit(lambda d: d["parameters"]["n_layers"].update(bounds=[20.5, 60])),
     "parameters.n_layers.bounds", "an int parameter needs whole bounds"),
    ("log-scale-zero", edit(lambda d: d["parameters"]["aerogel_thickness"].update(bounds=[0.0, 4.0], log_scale=True)),
     "parameters.aerogel_thickness.bounds", "needs bounds above 0"),
    ("type-on-choice", edit(lambda d: d["parameters"]["mirror"].update(type="int")), "parameters.mirror",
     "type and log_scale are for range parameters"),
    ("one-choice", edit(lambda d: d["parameters"]["mirror"].update(choices=["spherical"])),
     "parameters.mirror.choices", "must list at least 2 values, got ['spherical']"),
    ("repeated-choice", edit(lambda d: d["parameters"]["mirror"].update(choices=["a", "a"])),
     "parameters.mirror.choices", "repeats a value"),
    ("mixed-choices", edit(lambda d: d["parameters"]["mirror"].update(choices=["spherical", 2])),
     "parameters.mirror.choices", "mixes kinds of values"),
    ("constraint-syntax", edit(lambda d: d.update(parameter_constraints=["aerogel_thickness + gap < 6"])),
     "parameter_constraints[0]", "is not a linear constraint like \"a + 2*b <= 6.0\""),
    ("constraint-name", edit(lambda d: d.update(parameter_constraints=["aerogel + gap <= 6"])),
     "parameter_constraints[0]", "names aerogel, not a parameter"),
    ("constraint-on-choice", edit(lambda d: d.update(parameter_constraints=["aerogel_thickness + mirror <= 6"])),
     "parameter_constraints[0]", "names mirror: a constraint takes range parameters (and fixed values)"),
    ("constraint-never-met", edit(lambda d: d.update(parameter_constraints=["gap >= 3"])),
     "parameter_constraints[0]", "'gap >= 3' is never met with the fixed values"),
    ("outcome-constraint-syntax", edit(lambda d: d.update(outcome_constraints=["cost below 100"])),
     "outcome_constraints[0]", "is not like \"cost <= 100\""),
    ("unknown-parameter-key", edit(lambda d: d["parameters"]["gap"].update(unit="cm")), "parameters.gap",
     "unknown key 'unit'"),
    ("objectives-empty", edit(lambda d: d.update(objectives={})), "objectives", "must not be empty"),
    ("direction-typo", edit(lambda d: d["objectives"]["acceptance"].update(direction="maximise")),
     "objectives.acceptance.direction", "must be one of minimize, maximize, got 'maximise'"),
    ("direction-missing", edit(lambda d: d["objectives"]["acceptance"].pop("direction")), "objectives.acceptance",
     "missing key 'direction'"),
    ("threshold-text", edit(lambda d: d["objectives"]["acceptance"].update(threshold="high")),
     "objectives.acceptance.threshold", "must be a number, got 'high'"),
    ("optimizer-method", edit(lambda d: d["optimizer"].update(method="bayes")), "optimizer.method",
     "must be one of botorch, sobol, random, got 'bayes'"),
    ("optimizer-negative", edit(lambda d: d["optimizer"].update(initial_trials=-1)), "optimizer.initial_trials",
     "must be >= 0, got -1"),
    # keys from the AID2E-framework's YAML say where they go here
    ("framework-initial-samples", edit(lambda d: d["optimizer"].update(n_initial_samples=10)), "optimizer",
     "unknown key 'n_initial_samples' (in aid2e: optimizer.initial_trials)"),
    ("framework-iterations", edit(lambda d: d.update(n_iterations=50)), "",
     "unknown key 'n_iterations' (in aid2e: max_trials (top level: the total))"),
    ("framework-penalty", edit(lambda d: d["failure"].update(penalty_objectives={"acceptance": 0})), "failure",
     "unknown key 'penalty_objectives' (in aid2e: failure.penalty)"),
    ("framework-failed-objectives", edit(lambda d: d["failure"].update(failed_objectives={"acceptance": 0})),
     "failure", "unknown key 'failed_objectives' (in aid2e: failure.penalty)"),
    ("framework-scheduler-keys", edit(lambda d: d.update(scheduler={"monitor_interval": 30, "max_retries": 3})),
     "scheduler", "unknown key 'max_retries' (in aid2e: failure.max_retries); unknown key 'monitor_interval' "
                  "(in aid2e: scheduler.monitoring_interval)"),
    ("framework-optimizer-parameters", edit(lambda d: d["optimizer"].update(parameters={"seed": 1})), "optimizer",
     "unknown key 'parameters' (in aid2e: its keys directly: optimizer.{initial_trials, method, seed}"),
    ("slurm-words-in-resources", edit(lambda d: stage(1)(d)["resources"].update(partition="debug")),
     "trial.stages[1].resources", "unknown key 'partition' (in aid2e: queue (in resources; partition is a slurm "
                                  "backend's option))"),
    ("max-trials-zero", edit(lambda d: d.update(max_trials=0)), "max_trials", "must be >= 1, got 0"),
    ("max-trials-text", edit(lambda d: d.update(max_trials="50")), "max_trials", "must be a whole number, got '50'"),
    ("parallel-float", edit(lambda d: d.update(max_parallel_trials=2.5)), "max_parallel_trials",
     "must be a whole number, got 2.5"),
    ("backend-no-type", edit(lambda d: d["backends"]["local"].pop("type")), "backends.local", "missing key 'type'"),
    ("backend-not-installed", edit(lambda d: d["backends"]["local"].update(type="pbs")), "backends.local.type",
     "no installed plugin provides backend 'pbs' (installed backends:"),
    ("backend-option-typo", edit(lambda d: d["backends"]["cluster"].update(time_limt="1:00:00")), "backends.cluster",
     "unknown option 'time_limt' for SlurmRunner (did you mean 'time_limit'?)"),
    ("backend-option-value", edit(lambda d: d["backends"]["local"].update(n_jobs="four")), "backends.local",
     "n_jobs must be a non-zero integer (-1 = all cores), got 'four'"),
    ("stage-backend-unknown", edit(lambda d: stage(1)(d).update(backend="clustr")), "trial.stages[1].backend",
     "'clustr' is not among backends (did you mean 'cluster'?)"),
    ("trial-backend-unknown", edit(lambda d: d["trial"].update(backend="laptop")), "trial.backend",
     "'laptop' is not among backends"),
    ("stage-two-kinds", edit(lambda d: stage(2)(d).update(script=["true"])), "trial.stages[2]",
     "give exactly one of function, script or container (got function, script)"),
    ("stage-no-kind", edit(lambda d: stage(2)(d).pop("function")), "trial.stages[2]",
     "give exactly one of function, script or container (got none)"),
    ("stage-unknown-key", edit(lambda d: stage(1)(d).update(fanout={"a": [1]})), "trial.stages[1]",
     "unknown key 'fanout' (did you mean 'fan_out'?)"),
    ("stage-no-name", edit(lambda d: stage(0)(d).pop("name")), "trial.stages[0]", "missing key 'name'"),
    ("stage-bad-name", edit(lambda d: stage(0)(d).update(name="geo/x")), "trial.stages[0].name",
     "is not a stage name"),
    ("stage-twice", edit(lambda d: stage(2)(d).update(name="geometry")), "trial.stages[2].name",
     "'geometry' names two stages"),
    ("per-unknown", edit(lambda d: d["trial"]["stages"].insert(2, {"name": "rec", "script": ["true"],
                                                                    "per": "simulation"})),
     "trial.stages[2].per", "'simulation' names no earlier stage (earlier: geometry, simulate)"),
    ("per-and-fan-out", edit(lambda d: d["trial"]["stages"].insert(2, {"name": "rec", "script": ["true"],
                                                                       "per": "simulate", "fan_out": {"k": [1]}})),
     "trial.stages[2].fan_out", "per: simulate takes that stage's fan-out"),
    ("fan-out-not-lists", edit(lambda d: stage(1)(d).update(fan_out={"particle": "pi+"})), "trial.stages[1].fan_out",
     "must be {name: [values, ...]} or a list of {name: value} dicts, got {'particle': 'pi+'"),
    ("fan-out-is-parameter", edit(lambda d: stage(1)(d)["fan_out"].update(gap=[1, 2])),
     "trial.stages[1].fan_out", "gap is also a trial parameter: rename the fan-out value"),
    ("argv-unknown-name", edit(lambda d: stage(1)(d)["script"].append("{energy}")), "trial.stages[1].script",
     "argv element '{energy}' names {energy}, which is neither a trial parameter nor a fan-out value of this "
     "stage"),
    # the Workflow's own checks, asked by the validator (they passed validate and stopped the run before)
    ("fan-out-dicts-differ", edit(lambda d: stage(1)(d).update(fan_out=[{"particle": "pi+"}, {"eta": 1.5}])),
     "trial.stages[1].fan_out", "every dict names the same keys (particle), got {'eta': 1.5}"),
    ("fan-out-repeats", edit(lambda d: stage(1)(d).update(fan_out=[{"particle": "pi+", "eta": 1.5}] * 2)),
     "trial.stages[1].fan_out", "repeats a combination of values"),
    ("argv-unmatched-brace", edit(lambda d: stage(1)(d)["script"].append("{particle")), "trial.stages[1].script",
     "argv element '{particle' has an unmatched '{' (write {{ for a literal brace)"),
    ("container-command-name", edit(lambda d: stage(1)(d).pop("script") and stage(1)(d).update(
        container={"image": "busybox", "command": ["sim", "{nope}"]})), "trial.stages[1].container.command",
     "argv element '{nope}' names {nope}, which is neither a trial parameter nor a fan-out value of this stage"),
    ("last-stage-fans-out", edit(lambda d: stage(2)(d).update(fan_out={"k": [1, 2]})), "trial.stages[2]",
     "the last stage gives the trial's metrics, so it runs once"),
    ("exit-code-action", edit(lambda d: stage(0)(d).update(exit_codes={9: "penalise"})),
     "trial.stages[0].exit_codes.9", "must be one of penalty, infeasible, fail, got 'penalise'"),
    ("exit-code-range", edit(lambda d: stage(0)(d).update(exit_codes={300: "fail"})), "trial.stages[0].exit_codes",
     "300 is not an exit code 1 to 255"),
    ("function-form", edit(lambda d: stage(2)(d).update(function="aggregate")), "trial.stages[2].function",
     "'aggregate' is not \"module:function\""),
    ("function-missing", edit(lambda d: stage(2)(d).update(function="drich_utils_cf:aggregat")),
     "trial.stages[2].function", "cannot load function 'drich_utils_cf:aggregat'"),
    ("script-missing", edit(lambda d: stage(0)(d).update(script=["bash", "geometry.sh"])), "trial.stages[0].script[1]",
     "geometry.sh does not exist next to the campaign file"),
    ("program-missing", edit(lambda d: stage(0)(d).update(script=["checkOverlapz", "x"])), "trial.stages[0].script[0]",
     "program 'checkOverlapz' is not on PATH"),
    ("script-path-missing", edit(lambda d: stage(0)(d).update(script="geo_missing.sh")), "trial.stages[0].script",
     "geo_missing.sh does not exist next to the campaign file"),
    ("resources-unknown", edit(lambda d: stage(1)(d)["resources"].update(gpus=1)), "trial.stages[1].resources",
     "unknown key 'gpus'"),
    ("cpus-zero", edit(lambda d: stage(1)(d)["resources"].update(cpus=0)), "trial.stages[1].resources.cpus",
     "must be >= 1, got 0"),
    # the scheduler's own config check, with the file's key paths
    ("timeout-words", edit(lambda d: d["failure"].update(trial_timeout="soon")), "failure.trial_timeout",
     "must be seconds or a duration like '04:00:00', '90s' or '2h', got 'soon'"),
    ("timeout-zero", edit(lambda d: d["failure"].update(trial_timeout=0)), "failure.trial_timeout",
     "must be seconds or a duration like '04:00:00', '90s' or '2h', got 0"),
    ("scheduler-walltime", edit(lambda d: d.update(scheduler={"resources": {"walltime": "two hours"}})),
     "scheduler.resources", "'walltime' must look like '02:00:00', '1-00:00:00' or '2h', got 'two hours'"),
    ("policy-typo", edit(lambda d: d["failure"].update(policy="penalise")), "failure.policy",
     "must be one of fail, penalty, got 'penalise'"),
    ("penalty-missing-objective", edit(lambda d: d["failure"]["penalty"].pop("acceptance")), "failure.penalty",
     "lacks objective(s) acceptance"),
    ("penalty-needed", edit(lambda d: d["failure"].pop("penalty")), "failure.penalty",
     "policy is penalty: give a value for every objective"),
    ("penalty-needed-by-exit-code", edit(lambda d: d.update(failure={"policy": "fail"})), "failure.penalty",
     "an exit code maps to penalty"),
    ("penalty-text", edit(lambda d: d["failure"]["penalty"].update(acceptance="zero")), "failure.penalty.acceptance",
     "must be a number, got 'zero'"),
    ("penalty-negative-sem", edit(lambda d: d["failure"]["penalty"].update(acceptance=[0.0, -1.0])),
     "failure.penalty.acceptance", "the sem -1.0 is negative"),
    ("rate-above-one", edit(lambda d: d["failure"].update(tolerated_failure_rate=1.5)),
     "failure.tolerated_failure_rate", "must be <= 1, got 1.5"),
    ("trial-empty", edit(lambda d: d.update(trial={})), "trial",
     "give stages, or one of function, script or container (got none)"),
    ("stages-empty", edit(lambda d: d["trial"].update(stages=[])), "trial.stages", "must have at least 1 item, got []"),
    ("scheduler-unknown", edit(lambda d: d.update(scheduler={"poll": 3})), "scheduler", "unknown key 'poll'"),
    ("monitoring-zero", edit(lambda d: d.update(scheduler={"monitoring_interval": 0})),
     "scheduler.monitoring_interval", "must be > 0, got 0"),
]


@pytest.mark.parametrize("make, where, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_file_is_one_line_naming_the_key(folder, capsys, make, where, words):
    path = write(folder, make())
    code, out, err = validate(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    prefix = f"{path}: {where}: " if where else f"{path}: "
    assert err.startswith(prefix), err
    assert words in err, err


@pytest.mark.parametrize("text, words", [
    ("name: a\nname: b\n", "line 2, column 1: not valid YAML: a key is given twice ('name')"),
    ("name: [unclosed\n", "not valid YAML"),
    ("name: a\n\tparameters: {}\n", "not valid YAML"),
    ("", "is empty: see aid2e init for a starter campaign"),
    ("- a list\n- not a mapping\n", "must be a mapping {key: value}, got ['a list', 'not a mapping']"),
], ids=["duplicate-key", "unclosed", "tab", "empty", "not-a-mapping"])
def test_a_file_that_is_not_a_campaign_is_one_line(folder, capsys, text, words):
    path = folder / "campaign.yaml"
    path.write_text(text)
    code, out, err = validate(capsys, path)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"{path}: ") and words in err, err


def test_a_missing_file_and_a_directory(folder, capsys):
    for path, words in ((folder / "nope.yaml", "no such file"), (folder, "is a directory, not a campaign file")):
        code, out, err = validate(capsys, path)
        assert (code, err) == (2, f"{path}: {words}\n")


def test_several_problems_are_one_line_each(folder, capsys):
    data = base()
    data["objectives"]["acceptance"]["direction"] = "up"
    data["max_trials"] = 0
    code, out, err = validate(capsys, write(folder, data))
    assert code == 2 and len(err.splitlines()) == 2
    assert all(line.startswith(str(folder / "campaign.yaml")) for line in err.splitlines())


def test_yaml_1_2_keeps_yes_and_no_as_text(folder):
    """YAML 1.1 (PyYAML) would read [yes, no] as [True, False]: a choice parameter's values changed."""
    from aid2e.campaign_file import read

    path = folder / "campaign.yaml"
    path.write_text(EXAMPLE.replace("drich_utils:aggregate", "drich_utils_cf:aggregate")
                    .replace("choices: [spherical, parabolic]", "choices: [yes, no, on]"))
    assert read(path)["parameters"]["mirror"]["choices"] == ["yes", "no", "on"]


def test_the_schema_command_prints_the_validators_schema(capsys):
    from aid2e.campaign_file import SCHEMA

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


def test_validation_never_imports_ax(folder):
    path = write(folder, {**base(), "max_trials": 0})
    code = (f"import sys; from aid2e.cli import main; rc = main(['validate', {str(path)!r}]); "
            "assert 'ax' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "max_trials: must be >= 1, got 0" in done.stderr, done.stderr


def reference_files() -> dict[str, str]:
    """The files the campaign file reference's complete example writes (its ``<!-- file: -->`` blocks)."""
    from aid2e.testing.docblocks import parse

    page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "campaign-file.md"
    return {b.argument: b.code for b in parse(page.read_text()) if b.kind == "file"}


def test_the_references_campaign_file_is_the_one_checked_here_and_valid(folder, capsys):
    files = reference_files()
    assert files["campaign.yaml"] == EXAMPLE
    for name, text in files.items():
        (folder / name).write_text(text)
    code, out, err = validate(capsys, folder / "campaign.yaml")
    assert (code, err) == (0, "") and "valid" in out


def test_the_reference_is_generated_from_the_schema_and_documents_every_key(capsys):
    from aid2e.campaign_file import SCHEMA, reference

    assert main(["schema", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table == reference()
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    undocumented = [row[0] for row in rows if not row[2].replace("(required)", "").strip(" |")]
    assert not undocumented, undocumented
    keys = {row[0].strip("| `") for row in rows}
    assert {"name", "trial.stages[].fan_out", "failure.penalty", "scheduler.monitoring_interval",
            "parameters.<name>.bounds", "objectives.<name>.threshold"} <= keys
    assert set(SCHEMA["properties"]) <= keys


@pytest.mark.timeout(600)
def test_the_references_campaign_file_runs_on_the_real_slurm(tmp_path):
    """The reference's example as written, with the scripts and module it names (from the page too):
    geo.sh exits 9 for thick aerogel, sim.sh writes a value, drich_utils merges them."""
    import aid2e
    from aid2e_psij.testing import require_slurm

    partition = require_slurm()["partition"]
    for name, text in reference_files().items():
        (tmp_path / name).write_text(text.replace("partition: debug,", f"partition: {partition},"))
    checked = subprocess.run([sys.executable, "-m", "aid2e", "validate", "campaign.yaml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert f"    cluster (slurm): ready, partition {partition} up, nodes: 1 " in checked.stdout, checked.stdout
    done = subprocess.run([sys.executable, "-m", "aid2e", "run", "campaign.yaml", "--max-trials", "4"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    scheduler = aid2e.AxScheduler.resume(str(tmp_path / "campaigns" / "drich-toy"))
    assert len(scheduler.trials) == 4
    for record in scheduler.trials.values():
        p = record.parameters
        assert record.status == "COMPLETED", record.message
        assert p["gap"] == 2.5 and p["aerogel_thickness"] + p["gap"] <= 6.0 + 1e-9 and isinstance(p["n_layers"], int)
        if p["aerogel_thickness"] > 3.4:
            assert record.penalized and record.metrics["piKsep_etalow"].mean == 0.0
            continue
        values = [p["aerogel_thickness"] * eta / p["n_layers"] + k for k in (0.5, 0.0) for eta in (1.5, 2.5)]
        assert record.metrics["piKsep_etalow"].mean == pytest.approx(sum(values) / 4, rel=1e-12)
        assert {j.handle.backend for j in record.jobs.values() if j.stage == "simulate"} == {"slurm"}
