"""A checked campaign file (:mod:`aid2e.campaign_file`) made into what runs it: the Ax experiment
(``ax.Client``), the named backends, the trial's workflow and the scheduler's config.

Paths in the file are relative to the file: ``output_dir``, scripts, and the modules its
functions come from (the file's directory is put first on ``sys.path``). A trial given as one
``function``/``script``/``container`` runs as a one-stage workflow named ``trial``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The campaign file's frozen copy in its campaign directory, and where the original came from.
FROZEN_FILE = "campaign.yaml"
SOURCE_FILE = "aid2e_campaign_source.json"
DEFAULT_OUTPUT = "aid2e_jobs"


def campaign_dir(data: Mapping[str, Any], base: Path) -> Path:
    from .campaign import directory_name

    return (base / data.get("output_dir", DEFAULT_OUTPUT)).resolve() / directory_name(data["name"])


def experiment(data: Mapping[str, Any]) -> Any:
    """The ``ax.Client`` of the file's problem and optimizer (Ax is imported here)."""
    from ax import ChoiceParameterConfig, Client, RangeParameterConfig

    optimizer = data.get("optimizer") or {}
    client = Client(random_seed=optimizer.get("seed"))
    parameters = []
    for name, spec in data["parameters"].items():
        if "bounds" in spec:
            kind = spec.get("type", "float")
            low, high = spec["bounds"]
            bounds = (int(low), int(high)) if kind == "int" else (float(low), float(high))
            parameters.append(RangeParameterConfig(name=name, bounds=bounds, parameter_type=kind,
                                                   scaling="log" if spec.get("log_scale") else None))
        else:
            values = list(spec["choices"]) if "choices" in spec else [spec["value"]]
            kind = _value_type(values)
            parameters.append(ChoiceParameterConfig(name=name, values=values, parameter_type=kind,
                                                    is_ordered=None if len(values) < 2 else kind != "str"))
    from .campaign_file import constraint_for_ax

    constraints = [constraint_for_ax(text, data["parameters"]) for text in data.get("parameter_constraints") or []]
    client.configure_experiment(name=data["name"], parameters=parameters,
                                parameter_constraints=[c for c in constraints if c is not None])
    objectives = data["objectives"]
    objective = ", ".join(("-" if spec["direction"] == "minimize" else "") + name for name, spec in objectives.items())
    thresholds = [f"{name} {'<=' if spec['direction'] == 'minimize' else '>='} {spec['threshold']}"
                  for name, spec in objectives.items() if "threshold" in spec]
    client.configure_optimization(objective=objective,
                                  outcome_constraints=thresholds + list(data.get("outcome_constraints") or []))
    method = optimizer.get("method", "botorch")
    if method == "random":
        from ax.adapter.registry import Generators
        from ax.generation_strategy.generation_node import GenerationStep
        from ax.generation_strategy.generation_strategy import GenerationStrategy

        client.set_generation_strategy(GenerationStrategy(nodes=[GenerationStep(
            generator=Generators.UNIFORM, num_trials=-1, max_parallelism=None,
            model_kwargs={"seed": optimizer.get("seed")})]))
    else:
        client.configure_generation_strategy(
            method="random_search" if method == "sobol" else "fast",
            initialization_budget=optimizer.get("initial_trials"),
            initialization_random_seed=optimizer.get("seed"))
    return client


def _value_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


def backends(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file's named runners, built by their plugins (one line naming the backend if one cannot be)."""
    from .plugins import get_plugin_manager

    built = {}
    for name, spec in (data.get("backends") or {}).items():
        options = {k: v for k, v in spec.items() if k != "type"}
        try:
            built[name] = get_plugin_manager().backend(spec["type"]).factory(**options)
        except (TypeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"backends.{name}: {' '.join(str(exc).split())}") from exc
    return built


def workflow(data: Mapping[str, Any], base: Path, runners: Mapping[str, Any]) -> Any:
    """The trial's :class:`~aid2e.workflow.Workflow`; stages without a backend use the trial's."""
    from .campaign_file import stage_fields
    from .workflow import Stage, Workflow

    built = []
    for fields in stage_fields(data):
        if "backend" in fields:
            fields["backend"] = runners[fields["backend"]]
        if "script" in fields:
            fields["script"] = _script(fields["script"], base)
        if "container" in fields:
            fields["container"] = container_options(fields["container"], base)
        built.append(Stage(**fields))
    return Workflow(built)


def container_options(container: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A file's container options, with relative host paths of ``binds`` (``{host: target}`` or
    ``["host:target[:ro]"]``) made relative to the campaign file, as its scripts are."""
    options = dict(container)
    binds = options.get("binds")
    if isinstance(binds, Mapping):
        options["binds"] = {_host_path(host, base): target for host, target in binds.items()}
    elif isinstance(binds, (str, list, tuple)):
        items = [binds] if isinstance(binds, str) else list(binds)
        options["binds"] = [_host_path(item, base, split=True) if isinstance(item, str) else item for item in items]
    return options


def _host_path(text: Any, base: Path, split: bool = False) -> Any:
    if not isinstance(text, str):
        return text
    host, sep, rest = text.partition(":") if split else (text, "", "")
    path = Path(host).expanduser()
    if host and not path.is_absolute():
        host = str(base / path)
    return f"{host}{sep}{rest}"


def _script(script: Any, base: Path) -> Any:
    """A script path relative to the campaign file, or an argv whose relative paths to files next
    to the file are made absolute (jobs run in their own directories)."""
    from .stages import absolute_paths

    if isinstance(script, str):
        return str((base / script).resolve())
    return absolute_paths(script, base)


def config(data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The scheduler's config keys from the file."""
    out: dict[str, Any] = {"job_output_dir": str((base / data.get("output_dir", DEFAULT_OUTPUT)).resolve())}
    if "max_parallel_trials" in data:
        out["max_parallel_trials"] = data["max_parallel_trials"]
    failure = data.get("failure") or {}
    renamed = {"policy": "failure_policy"}
    for key, value in failure.items():
        out[renamed.get(key, key)] = value
    out.update(data.get("scheduler") or {})
    return out


def use_modules_next_to(base: Path) -> None:
    """Functions named ``module:name`` in the file import from its directory first."""
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))


# ---------------------------------------------------------------- aid2e init
#: The starter campaign ``aid2e init`` writes: every file it needs, so ``aid2e run`` works at once.
STARTER = {
    "campaign.yaml": """\
# A starter aid2e campaign: a toy detector with two design parameters and two objectives.
# Check it with `aid2e validate campaign.yaml`, run it with `aid2e run campaign.yaml`,
# look at it with `aid2e status aid2e_jobs/starter`. `aid2e schema` prints every key there is.
name: starter                       # the campaign directory is <output_dir>/<name>
output_dir: ./aid2e_jobs            # relative to this file
parameters:
  thickness: {bounds: [1.0, 4.0]}   # a float range (cm)
  layers: {bounds: [10, 40], type: int}
objectives:
  resolution: {direction: minimize, threshold: 0.2}
  cost: {direction: minimize, threshold: 100.0}
optimizer: {initial_trials: 6, method: botorch, seed: 1}   # botorch | sobol | random
max_trials: 12
max_parallel_trials: 3
backends:
  local: {type: joblib, n_jobs: 4}  # local cores; e.g. {type: slurm, partition: debug, time_limit: "01:00:00"}
trial:
  backend: local
  stages:
    - name: simulate                # one job per energy, each a script run with argv (never a shell)
      fan_out: {energy: [1.0, 5.0, 20.0]}
      script: [python3, simulate.py, "{energy}"]
    - {name: analyze, function: "starter_analysis:analyze"}   # gets every simulation's output
failure: {policy: fail, max_retries: 1}
""",
    "simulate.py": """\
\"\"\"Toy simulation of one energy: the stochastic and constant terms of a calorimeter's resolution.\"\"\"
import json
import math
import os
import sys

energy = float(sys.argv[1])
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))  # this trial's parameters
stochastic = 0.5 / math.sqrt(p["thickness"] * p["layers"])
constant = 0.002 * p["layers"] / p["thickness"]
resolution = math.hypot(stochastic / math.sqrt(energy), constant)
json.dump({"energy": energy, "resolution": resolution}, open(os.environ["AID2E_RESULT_FILE"], "w"))
""",
    "starter_analysis.py": """\
\"\"\"The last stage: every simulation's output in, the trial's objectives out.\"\"\"


def analyze(thickness, layers, inputs):
    results = [job["result"] for job in inputs["simulate"]]
    resolution = sum(r["resolution"] for r in results) / len(results)
    return {"resolution": resolution, "cost": thickness * layers}
""",
}


def init(where: Path) -> list[Path]:
    """Write the starter campaign into ``where`` (created if needed); never overwrites a file."""
    existing = [name for name in STARTER if (where / name).exists()]
    if existing:
        raise ConfigError(f"{where} already has {', '.join(existing)}: aid2e init never overwrites; "
                          "give an empty or new directory")
    where.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in STARTER.items():
        (where / name).write_text(text)
        written.append(where / name)
    return written


__all__ = ["DEFAULT_OUTPUT", "FROZEN_FILE", "SOURCE_FILE", "STARTER", "backends", "campaign_dir", "config",
           "experiment", "init", "use_modules_next_to", "workflow"]
