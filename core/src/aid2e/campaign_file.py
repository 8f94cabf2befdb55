"""Campaign files: a whole campaign in YAML (problem, optimizer, backends, the trial's stages,
failure policy), read and checked without Ax.

One source says what a file may hold: :data:`SCHEMA`, a JSON Schema (draft 2020-12) whose
``description`` s document every key. ``aid2e schema`` prints it (editors validate YAML with it),
the validator checks files against it with ``jsonschema``, and the documentation's reference of
the file is generated from it, so the three cannot disagree. Checks a schema cannot express (bounds
reversed, a penalty missing an objective, a stage naming a backend that is not defined) follow in
:func:`check`. The stages are checked by the Workflow's own rules
(:func:`aid2e.workflow.workflow_problems`: unique names, ``per``, fan-outs, argv names, the last
stage running once), whose problems carry the stage and key, so a file and the Python API are
held to one set of rules. Each problem is one line::

    campaign.yaml: parameters.gap.bounds: the lower bound 4.0 is above the upper bound 2.0

YAML is read with ``ruamel.yaml`` (YAML 1.2: ``no`` stays the string "no", as a physicist
writing ``choices: [yes, no]`` means; a key given twice is an error, not silently the last one;
errors carry line and column).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from .errors import ConfigError

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NUMBER = {"type": "number"}
_DURATION = {"type": ["string", "number"], "description": "seconds, or a duration like \"04:00:00\", \"90s\", \"2h\""}


def _object(properties: dict[str, Any], *, required: tuple[str, ...] = (), description: str = "",
            **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


_RESOURCES = _object({
    "cpus": {"type": "integer", "minimum": 1, "description": "CPUs per job"},
    "memory": {"type": "string", "description": "memory per job, e.g. \"4G\""},
    "walltime": {"type": "string", "description": "longest run of a job, e.g. \"04:00:00\""},
    "queue": {"type": "string", "description": "the batch queue (partition)"},
    "account": {"type": "string", "description": "the batch account"},
    "extra": {"type": "object", "additionalProperties": {"type": "string"},
              "description": "backend-specific options, name -> value"},
}, description="what each job asks of the machine")

_ARGV = {"type": "array", "items": {"type": "string"}, "minItems": 1,
         "description": "a program and its arguments, never run through a shell; {name} is a trial parameter "
                        "or fan-out value"}

_JOB = {
    "function": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                 "description": "a Python function, \"module:name\" (modules next to the campaign file import)"},
    "script": {"oneOf": [{"type": "string", "minLength": 1}, _ARGV],
               "description": "a script path (relative to the campaign file; run by its interpreter) or an argv list"},
    "container": _object({
        "image": {"type": "string", "minLength": 1, "description": "the image (a registry reference, a SIF file "
                                                                  "or an unpacked directory, e.g. on CVMFS)"},
        "command": {"oneOf": [{"type": "string", "minLength": 1}, _ARGV],
                    "description": "the command in the container (argv; {name} filled in)"},
    }, required=("image", "command"), description="a container image and its command; the containers plugin's "
                                                  "options may be added (engine, binds, env, gpus, network, ...; a "
                                                  "bind's relative host path is relative to this file)",
        **{"additionalProperties": True}),
    "backend": {"type": "string", "description": "a name from backends (default: trial.backend)"},
    "resources": _RESOURCES,
    "exit_codes": {"type": "object", "propertyNames": {"pattern": r"^([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$"},
                   "additionalProperties": {"enum": ["penalty", "infeasible", "fail"]},
                   "description": "exit code -> penalty | infeasible | fail"},
}
_ONE_KIND = {"oneOf": [{"required": ["function"]}, {"required": ["script"]}, {"required": ["container"]}],
             "x-message": "give exactly one of function, script or container"}

_STAGE = _object({
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_+=,-]*$", "description": "the stage's name"},
    **_JOB,
    "fan_out": {"oneOf": [
        {"type": "object", "minProperties": 1, "propertyNames": {"pattern": _NAME},
         "additionalProperties": {"type": "array", "minItems": 1}},
        {"type": "array", "minItems": 1, "items": {"type": "object", "minProperties": 1}}],
        "description": "{name: [values]} (their product) or a list of {name: value}",
        "x-message": "must be {name: [values, ...]} or a list of {name: value} dicts"},
    "per": {"type": "string", "description": "run one job per job of this earlier stage, with its fan-out values"},
}, required=("name",), description="one stage of a trial", **_ONE_KIND)

_PARAMETER = _object({
    "bounds": {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2,
               "description": "[low, high] of a range parameter", "x-message": "must be [low, high]"},
    "type": {"enum": ["float", "int"], "description": "a range parameter's type (default: float)"},
    "log_scale": {"type": "boolean", "description": "search a range parameter on a log scale"},
    "choices": {"type": "array", "minItems": 2, "items": {"type": ["string", "number", "boolean"]},
                "description": "the values of a choice parameter", "x-message": "must list at least 2 values"},
    "value": {"type": ["string", "number", "boolean"], "description": "the value of a fixed parameter"},
}, description="a design parameter: {bounds: [lo, hi]}, {choices: [...]} or {value: v}",
    oneOf=[{"required": ["bounds"]}, {"required": ["choices"]}, {"required": ["value"]}],
    **{"x-message": "give exactly one of bounds, choices or value"})

#: The campaign file's JSON Schema: the one description of what a file may hold.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://aid2e.org/schema/campaign.json",
    "title": "aid2e campaign",
    **_object({
        "name": {"type": "string", "minLength": 1, "description": "the campaign's name; its directory is "
                                                                  "<output_dir>/<name>"},
        "output_dir": {"type": "string", "description": "where campaigns live (default ./aid2e_jobs), relative "
                                                        "to the campaign file"},
        "parameters": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": _NAME},
                       "additionalProperties": _PARAMETER, "description": "the design space, name -> parameter"},
        "parameter_constraints": {"type": "array", "items": {"type": "string"},
                                  "description": "linear constraints, e.g. \"a + b <= 6.0\""},
        "objectives": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": _NAME},
                       "additionalProperties": _object({
                           "direction": {"enum": ["minimize", "maximize"], "description": "which way is better"},
                           "threshold": {**_NUMBER, "description": "the reference point for several objectives"},
                       }, required=("direction",)), "description": "metric name -> {direction, threshold}"},
        "outcome_constraints": {"type": "array", "items": {"type": "string"},
                                "description": "constraints on other metrics, e.g. \"cost <= 100\""},
        "optimizer": _object({
            "initial_trials": {"type": "integer", "minimum": 0,
                               "description": "quasi-random (Sobol) trials before the model takes over"},
            "method": {"enum": ["botorch", "sobol", "random"],
                       "description": "botorch (Ax's default), sobol or random"},
            "seed": {"type": "integer", "description": "the generator's random seed"},
        }, description="how Ax generates trials"),
        "max_trials": {"type": "integer", "minimum": 1, "description": "trials to run (aid2e run --max-trials "
                                                                       "overrides it)"},
        "max_parallel_trials": {"type": "integer", "minimum": 1, "description": "trials in flight"},
        "backends": {"type": "object", "propertyNames": {"pattern": _NAME},
                     "additionalProperties": {"type": "object", "required": ["type"],
                                              "properties": {"type": {"type": "string", "minLength": 1,
                                                                      "description": "the backend plugin's name"}},
                                              "description": "{type: <backend plugin>, ...its options}"},
                     "description": "named runners: name -> {type: joblib | slurm | psij | panda | ..., options}"},
        "trial": {**_object({
            **_JOB,
            "stages": {"type": "array", "minItems": 1, "items": _STAGE,
                       "description": "the trial's stages, run in order; the last one gives the metrics"},
        }, description="what one trial runs: stages, or one function, script or container"),
            "oneOf": [{"required": ["stages"]}, {"required": ["function"]}, {"required": ["script"]},
                      {"required": ["container"]}],
            "x-message": "give stages, or one of function, script or container"},
        "failure": _object({
            "policy": {"enum": ["fail", "penalty"], "description": "a failed trial fails, or completes with penalty"},
            "penalty": {"type": "object", "additionalProperties": {"oneOf": [
                _NUMBER, {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}]},
                "description": "objective -> value (or [mean, sem]) for every objective"},
            "max_failed_trials": {"type": "integer", "minimum": 0, "description": "stop launching past this many "
                                                                                 "failed or penalized trials"},
            "max_retries": {"type": "integer", "minimum": 0, "description": "reruns of a job after an "
                                                                           "infrastructure failure"},
            "trial_timeout": {**_DURATION, "description": "seconds a job may run"},
            "tolerated_failure_rate": {"type": "number", "minimum": 0, "maximum": 1,
                                       "description": "stop launching when failed / max(finished, 5) exceeds it"},
        }, description="what becomes of failed trials"),
        "scheduler": _object({
            "monitoring_interval": {"type": "number", "exclusiveMinimum": 0,
                                    "description": "longest wait between status checks (s)"},
            "snapshot_interval": {"type": "number", "minimum": 0,
                                  "description": "seconds between full Ax snapshots while running"},
            "synchronous": {"type": "boolean", "description": "one trial at a time"},
            "cleanup_after_completion": {"type": "boolean",
                                         "description": "remove a completed trial's directory (failed ones stay)"},
            "resources": _RESOURCES,
        }, description="the scheduler's other settings"),
    }, required=("name", "parameters", "objectives", "trial")),
}


#: Keys a user brings from elsewhere (the AID2E-framework's YAML, the older scheduler, Ax, Slurm)
#: and where the same thing goes in an aid2e campaign file: an unknown key's problem says so.
ELSEWHERE = {
    "problem": "name, parameters and objectives are top-level keys",
    "workflows": "trial: {stages: [...]}",
    "workflow": "trial: {stages: [...]}",
    "n_initial_samples": "optimizer.initial_trials",
    "num_initialization_trials": "optimizer.initial_trials",
    "n_iterations": "max_trials (top level: the total)",
    "num_trials": "max_trials",
    "batch_size": "max_parallel_trials (top level)",
    "objective_thresholds": "objectives.<name>.threshold",
    "penalty_objectives": "failure.penalty",
    "failure_policy": "failure.policy",
    "runner_type": "backends: {<name>: {type: joblib | slurm | psij | panda, ...}}",
    "runner": "backends: {<name>: {type: ..., ...}} and trial.backend",
    "retry_max": "failure.max_retries",
    "timeout_sec": "failure.trial_timeout",
    "job_output_dir": "output_dir",
    "minimize": "direction: minimize",
    "goal": "direction: minimize | maximize",
    "min": "bounds: [low, high]",
    "max": "bounds: [low, high]",
    "lower": "bounds: [low, high]",
    "upper": "bounds: [low, high]",
    "range": "bounds: [low, high]",
    "values": "choices: [...]",
    "fixed": "value: v",
    "log": "log_scale: true",
    "value_type": "type: float | int",
    "mem": "memory",
    "time": "walltime",
    "time_limit": "walltime (in a stage's resources; time_limit is a slurm backend's option)",
    "partition": "queue (in resources; partition is a slurm backend's option)",
    "payloads": "fan_out: a list of {name: value}",
    "job_factory": "fan_out (a dict of lists, or a list of dicts) or per: <earlier stage>",
    # more of the AID2E-framework's keys, as its examples write them
    "failed_objectives": "failure.penalty",
    "design_parameters_file": "parameters, inline: {<name>: {bounds: [low, high]}}",
    "evaluation_config": "your analysis's settings stay in your scripts; a fixed value is a parameter {value: v}",
    "output_location": "output_dir",
    "monitor_interval": "scheduler.monitoring_interval",
    "poll_interval": "scheduler.monitoring_interval",
    "parameters": "its keys directly: optimizer.{initial_trials, method, seed}; a runner's options in "
                  "backends.<name>",
    "generator": "optimizer.method (botorch | sobol | random)",
    "max_retries": "failure.max_retries",
    "max_concurrent": "max_parallel_trials, or a backend's n_jobs (joblib) or max_in_flight (slurm)",
    "parallelism": "failure.max_retries and failure.trial_timeout; slots: max_parallel_trials",
}


@frozen
class Problem:
    """One thing wrong with a campaign file: where (a key path like ``parameters.gap.bounds``, or
    ``line 3, column 5``) and what, saying what is accepted."""

    where: str
    what: str

    def line(self, source: str) -> str:
        return f"{source}: {self.where}: {self.what}" if self.where else f"{source}: {self.what}"


class CampaignFileError(ConfigError):
    """A campaign file with problems: each one line, ``FILE: key.path: what``."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source, self.problems = source, problems
        super().__init__("\n".join(p.line(source) for p in problems))


# ---------------------------------------------------------------- reading
def read(path: str | Path) -> dict[str, Any]:
    """The campaign in ``path``, checked (:func:`check`, relative paths from the file's directory);
    a :class:`CampaignFileError` lists every problem, or says why the file cannot be read."""
    source = Path(path)
    data = load(source)
    problems = check(data, source.resolve().parent)
    if problems:
        raise CampaignFileError(str(source), problems)
    return data


def load(source: Path) -> Any:
    """The YAML document in ``source`` as plain data (a one-line error when it cannot be read)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignFileError(str(source), [Problem("", "no such file")]) from None
    except IsADirectoryError:
        raise CampaignFileError(str(source), [Problem("", "is a directory, not a campaign file")]) from None
    except UnicodeDecodeError as exc:
        raise CampaignFileError(str(source), [Problem("", f"is not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise CampaignFileError(str(source), [Problem("", f"cannot be read: {exc.strerror or exc}")]) from exc
    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(exc.problem or exc.context or "is not valid YAML").split())
        if "duplicate key" in what or "found duplicate key" in str(exc):
            what = f"a key is given twice ({_duplicate(str(exc))}): give each key once"
        raise CampaignFileError(str(source), [Problem(where, f"not valid YAML: {what}")]) from exc
    except YAMLError as exc:
        raise CampaignFileError(str(source), [Problem("", f"not valid YAML: {' '.join(str(exc).split())}")]) from exc
    if data is None:
        raise CampaignFileError(str(source), [Problem("", "is empty: see aid2e init for a starter campaign")])
    return data


def _duplicate(text: str) -> str:
    match = re.search(r'found duplicate key "([^"]*)"', text)
    return f"{match.group(1)!r}" if match else "see the line above"


# ---------------------------------------------------------------- checking
def check(data: Any, base: Path | None = None) -> list[Problem]:
    """Every problem of the campaign ``data``: against :data:`SCHEMA` first, then the checks a
    schema cannot express (only when the shape is right); with ``base`` (the file's directory)
    also its backends' plugins, functions and scripts."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(SCHEMA)
    problems = [_problem(error, data) for error in sorted(validator.iter_errors(data), key=_order)]
    problems = list(dict.fromkeys(problems))  # one problem reported once
    if problems:
        return problems
    problems = list(_semantics(data)) or _config_problems(data)
    if base is not None and not problems:
        problems = list(_installed(data, base))
    return problems


#: The file's key of each scheduler config key (the rest sit under ``failure:`` or ``scheduler:``).
_CONFIG_KEYS = {"job_output_dir": "output_dir", "max_parallel_trials": "max_parallel_trials",
                "failure_policy": "failure.policy"}


def _config_problems(data: Mapping[str, Any]) -> list[Problem]:
    """The scheduler's own check of its config (:class:`aid2e.config.SchedulerConfig`), as the
    file gives it, so a file is held to the rules ``AxScheduler(config=...)`` has."""
    from .campaign_run import config
    from .config import SchedulerConfig

    given = config(data, Path("."))
    try:
        SchedulerConfig.from_mapping(given)
    except ConfigError as exc:
        text = " ".join(str(exc).split())
        match = re.match(r"config '(\w+)' ", text)
        if match is None:
            return [Problem("", text)]
        key = match.group(1)
        section = "failure" if key in (data.get("failure") or {}) else "scheduler"
        return [Problem(_CONFIG_KEYS.get(key, f"{section}.{key}"), text[match.end():])]
    return []


def _order(error: Any) -> tuple:
    return (list(map(str, error.absolute_path)), error.validator)


def _path(parts: Any, document: Any) -> str:
    """``a.b[2].c``: list positions in brackets, keys (an exit code too) after dots."""
    text, at = "", document
    for part in parts:
        text += f"[{part}]" if isinstance(at, list) else (f".{part}" if text else str(part))
        try:
            at = at[part]
        except (KeyError, IndexError, TypeError):
            at = None
    return text


def _brief(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


_TYPES = {"object": "a mapping {key: value}", "array": "a list", "string": "text", "number": "a number",
          "integer": "a whole number", "boolean": "true or false"}


def _problem(error: Any, document: Any) -> Problem:
    """One line for a schema error: where, what is wrong, what is accepted."""
    where = _path(error.absolute_path, document)
    kind, value, instance, schema = error.validator, error.validator_value, error.instance, error.schema
    if kind == "additionalProperties" and isinstance(instance, Mapping):
        known = list(schema.get("properties", {}))
        extra = [k for k in instance if k not in known]
        parts = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if str(key) in ELSEWHERE:
                hint = f" (in aid2e: {ELSEWHERE[str(key)]})"
            parts.append(f"unknown key {key!r}{hint}")
        valid = f"; valid keys: {', '.join(known)}" if known else ""
        return Problem(where, f"{'; '.join(parts)}{valid}")
    if kind == "required":
        missing = [k for k in value if isinstance(instance, Mapping) and k not in instance]
        described = schema.get("properties", {}).get(missing[0], {}).get("description", "") if missing else ""
        return Problem(where, f"missing key {missing[0]!r}" + (f" ({described})" if described else ""))
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        return Problem(where, f"must be {' or '.join(_TYPES.get(t, t) for t in wanted)}, got {_brief(instance)}")
    if kind == "enum":
        return Problem(where, f"must be one of {', '.join(map(str, value))}, got {_brief(instance)}")
    if kind in ("oneOf", "anyOf"):
        if "x-message" in schema:
            return Problem(where, schema["x-message"] + _given(instance, schema))
        best = _best(error)
        return _problem(best, document) if best is not None else Problem(where, f"is not valid: {_brief(instance)}")
    if kind in ("minimum", "exclusiveMinimum", "maximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}[kind]
        return Problem(where, f"must be {sign} {value}, got {_brief(instance)}")
    if kind in ("minItems", "maxItems"):
        what = schema.get("x-message") or (f"must have {'at least' if kind == 'minItems' else 'at most'} {value} "
                                           f"item{'s' if value != 1 else ''}")
        return Problem(where, f"{what}, got {_brief(instance)}")
    if kind == "minProperties":
        return Problem(where, f"must not be empty ({schema.get('description', 'give at least one entry')})")
    if kind == "minLength":
        return Problem(where, "must not be empty")
    if kind == "pattern":
        return Problem(where, f"{_brief(instance)} is not {_pattern_text(value)}")
    if kind == "propertyNames":
        bad = [k for k in instance if not re.match(value.get("pattern", ".*"), str(k))] if isinstance(
            instance, Mapping) else []
        return Problem(where, f"{_brief(bad[0] if bad else instance)} is not {_pattern_text(value.get('pattern', ''))}")
    return Problem(where, f"{error.message}")


def _given(instance: Any, schema: Mapping[str, Any]) -> str:
    """What was given: the alternatives present (``(got bounds, value)``), or the value itself."""
    options = [r for branch in schema.get("oneOf", []) for r in branch.get("required", [])]
    if not options or not isinstance(instance, Mapping):
        return f", got {_brief(instance)}"
    present = [k for k in options if k in instance]
    return f" (got {', '.join(present)})" if present else " (got none)"


def _best(error: Any) -> Any:
    from jsonschema.exceptions import best_match

    return best_match(error.context) if error.context else None


def _pattern_text(pattern: str) -> str:
    return {
        _NAME: "a name (letters, digits and _, not starting with a digit)",
        r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$": "\"module:function\"",
        r"^([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$": "an exit code 1 to 255",
        r"^[A-Za-z0-9_][A-Za-z0-9_+=,-]*$": "a stage name (letters, digits, _ + = , -)",
    }.get(pattern, f"of the form {pattern}")


def _semantics(data: Mapping[str, Any]) -> Iterator[Problem]:
    """What a schema cannot say: ranges, references between keys, argv names."""
    from .workflow import workflow_problems

    parameters: Mapping[str, Any] = data["parameters"]
    for name, spec in parameters.items():
        bounds = spec.get("bounds")
        if bounds is not None:
            if bounds[0] >= bounds[1]:
                yield Problem(f"parameters.{name}.bounds", f"the lower bound {bounds[0]} must be below the upper "
                                                           f"bound {bounds[1]}")
            if spec.get("type") == "int" and any(isinstance(b, float) and not b.is_integer() for b in bounds):
                yield Problem(f"parameters.{name}.bounds", f"an int parameter needs whole bounds, got {bounds}")
            if spec.get("log_scale") and bounds[0] <= 0:
                yield Problem(f"parameters.{name}.bounds", f"a log-scale parameter needs bounds above 0, got {bounds}")
        elif "type" in spec or "log_scale" in spec:
            yield Problem(f"parameters.{name}", "type and log_scale are for range parameters (with bounds)")
        if "choices" in spec and len(set(map(repr, spec["choices"]))) != len(spec["choices"]):
            yield Problem(f"parameters.{name}.choices", f"repeats a value: {spec['choices']}")
        if "choices" in spec and len({_kind_of(v) for v in spec["choices"]}) > 1:
            yield Problem(f"parameters.{name}.choices", f"mixes kinds of values: {spec['choices']} (give all text, "
                                                        "all numbers or all true/false)")
    for position, text in enumerate(data.get("parameter_constraints") or []):
        try:
            constraint_for_ax(text, parameters)
        except ValueError as exc:
            yield Problem(f"parameter_constraints[{position}]", f"{text!r} {exc}")
    for position, text in enumerate(data.get("outcome_constraints") or []):
        if not _OUTCOME.match(text):
            yield Problem(f"outcome_constraints[{position}]", f"{text!r} is not like \"cost <= 100\" (a metric, "
                                                              "<= or >=, a number)")
    objectives = data["objectives"]
    failure = data.get("failure") or {}
    penalty = failure.get("penalty")
    policy = failure.get("policy", "fail")
    trial = data["trial"]
    stages = trial.get("stages") or []
    maps_penalty = any("penalty" in (s.get("exit_codes") or {}).values() for s in stages) or (
        "penalty" in (trial.get("exit_codes") or {}).values())
    if policy == "penalty" and penalty is None:
        yield Problem("failure.penalty", "policy is penalty: give a value for every objective, like "
                                         f"{{{next(iter(objectives))}: 0.0}}")
    if penalty is None and maps_penalty and policy != "penalty":
        yield Problem("failure.penalty", "an exit code maps to penalty: give a value for every objective")
    if penalty is not None:
        missing = [m for m in objectives if m not in penalty]
        if missing:
            yield Problem("failure.penalty", f"lacks objective(s) {', '.join(missing)}: give a value for each of "
                                             f"{', '.join(objectives)}")
        for metric, value in penalty.items():
            if isinstance(value, list) and value[1] < 0:
                yield Problem(f"failure.penalty.{metric}", f"the sem {value[1]} is negative")
    backends = data.get("backends") or {}
    for where, job in [("trial", trial)] + [(f"trial.stages[{i}]", s) for i, s in enumerate(stages)]:
        if "backend" in job and job["backend"] not in backends:
            close = difflib.get_close_matches(job["backend"], list(backends), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield Problem(f"{where}.backend", f"{job['backend']!r} is not among backends{hint} (defined: "
                                              f"{', '.join(backends) or 'none'})")
    single = "stages" not in trial
    for problem in workflow_problems(stage_fields(data), parameters, to_run=True):
        where = "trial" if single else f"trial.stages[{problem.index}]"
        yield Problem(f"{where}.{problem.key}" if problem.key else where, problem.what)


def stage_fields(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The file's stages as :class:`~aid2e.workflow.Stage` 's fields (a one-job trial is a stage
    named ``trial``; ``backend`` stays the name of one of ``backends``; exit codes are numbers)."""
    trial = data["trial"]
    stages = trial.get("stages") or [{"name": "trial", **{k: v for k, v in trial.items() if k != "backend"}}]
    fields = []
    for spec in stages:
        one = dict(spec)
        if "exit_codes" in one:
            one["exit_codes"] = {int(code) if isinstance(code, str) and code.isdigit() else code: action
                                 for code, action in one["exit_codes"].items()}
        fields.append(one)
    return fields


def _backend_problem(factory: Any, options: dict[str, Any]) -> str | None:
    """Why ``factory(**options)`` cannot build the runner (None: it can; it is built and closed,
    which starts nothing: workers and connections start with the first run)."""
    import inspect

    accepted = [p.name for p in inspect.signature(factory).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        close = difflib.get_close_matches(unknown[0], accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown option {unknown[0]!r} for {factory.__name__}{hint}; options: {', '.join(accepted)}"
    try:
        runner = factory(**options)
    except (TypeError, ValueError, ConfigError) as exc:
        return " ".join(str(exc).split())
    close_runner = getattr(runner, "close", None)
    if callable(close_runner):
        close_runner()
    return None


_INTERPRETERS = ("bash", "sh", "python", "python3", "perl", "root", "Rscript")


def _installed(data: Mapping[str, Any], base: Path) -> Iterator[Problem]:
    """What must exist where the campaign runs: each backend's plugin, each function (importable
    with the file's directory on the path), each script (relative to the file) and program, and
    the host side of each container bind."""
    import os
    import shutil
    import sys

    from . import serialize
    from .errors import PluginNotInstalledError
    from .plugins import get_plugin_manager

    manager = get_plugin_manager()
    for name, backend in (data.get("backends") or {}).items():
        try:
            factory = manager.backend(backend["type"]).factory
        except PluginNotInstalledError as exc:
            installed = ", ".join(sorted(manager.backends())) or "none"
            yield Problem(f"backends.{name}.type", f"{exc} (installed backends: {installed})")
            continue
        problem = _backend_problem(factory, {k: v for k, v in backend.items() if k != "type"})
        if problem is not None:
            yield Problem(f"backends.{name}", problem)
    trial = data["trial"]
    jobs = [("trial", trial)] + [(f"trial.stages[{i}]", s) for i, s in enumerate(trial.get("stages") or [])]
    for where, job in jobs:
        if "function" in job:
            added = str(base) not in sys.path
            if added:
                sys.path.insert(0, str(base))
            try:
                serialize.resolve(job["function"], what="function")
            except ConfigError as exc:
                yield Problem(f"{where}.function", f"{exc} (modules are imported from {base} and the installed ones)")
            finally:
                if added:
                    sys.path.remove(str(base))
        container = job.get("container")
        if isinstance(container, Mapping) and container.get("binds") is not None:
            from .campaign_run import container_options

            binds = container_options(container, base)["binds"]
            sources = list(binds) if isinstance(binds, Mapping) else [str(b).partition(":")[0] for b in binds]
            for source in sources:
                if not Path(source).expanduser().exists():
                    yield Problem(f"{where}.container.binds", f"{source} does not exist (a relative path is "
                                                              "relative to the campaign file)")
        script = job.get("script")
        if isinstance(script, str):
            path = base / script
            if not path.is_file():
                yield Problem(f"{where}.script", f"{script} does not exist next to the campaign file ({path})")
        elif isinstance(script, list):
            program = script[0]
            if "{" in program:
                continue
            if "/" in program:
                path = base / program
                if not path.is_file() or not os.access(path, os.X_OK):
                    yield Problem(f"{where}.script[0]", f"{program} is not an executable file ({path})")
            elif shutil.which(program) is None:
                yield Problem(f"{where}.script[0]", f"program {program!r} is not on PATH")
            elif os.path.basename(program) in _INTERPRETERS and len(script) > 1 and not script[1].startswith("-") \
                    and "{" not in script[1] and not (base / script[1]).is_file():
                yield Problem(f"{where}.script[1]", f"{script[1]} does not exist next to the campaign file "
                                                    f"({base / script[1]})")


_NUMBER_TEXT = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_TERM = rf"\s*({_NUMBER_TEXT}\s*\*\s*)?[A-Za-z_]\w*\s*"
_LINEAR = re.compile(rf"^(\s*[-+]?{_TERM}([-+]{_TERM})*)(<=|>=)\s*{_NUMBER_TEXT}\s*$")
_OUTCOME = re.compile(rf"^\s*[A-Za-z_][\w.:-]*\s*(<=|>=)\s*{_NUMBER_TEXT}\s*%?\s*$")


def constraint_for_ax(text: str, parameters: Mapping[str, Any]) -> str | None:
    """A parameter constraint as Ax takes it: fixed parameters' values moved to the right-hand
    side (``a + gap <= 6.0`` with gap 2.5 is ``a <= 3.5``); None when only fixed values remain and
    it holds. A ``ValueError`` says what is wrong (syntax, a name that is no range parameter, a
    constraint the fixed values already break)."""
    match = _LINEAR.match(text)
    if match is None:
        raise ValueError("is not a linear constraint like \"a + 2*b <= 6.0\"")
    terms = []
    for sign, coefficient, name in _TERMS.findall(match.group(1)):
        factor = float(coefficient) if coefficient else 1.0
        terms.append((-factor if sign == "-" else factor, name))
    unknown = sorted({name for _, name in terms} - set(parameters))
    if unknown:
        raise ValueError(f"names {', '.join(unknown)}, not a parameter")
    choices = sorted(name for _, name in terms if "choices" in parameters[name])
    if choices:
        raise ValueError(f"names {', '.join(choices)}: a constraint takes range parameters (and fixed values)")
    bound = float(text.rsplit("=", 1)[1])
    kept = []
    for factor, name in terms:
        if "value" in parameters[name]:
            bound -= factor * float(parameters[name]["value"])
        else:
            kept.append((factor, name))
    relation = "<=" if "<=" in text else ">="
    if not kept:
        if (0.0 <= bound) if relation == "<=" else (0.0 >= bound):
            return None
        raise ValueError("is never met with the fixed values")
    left = " + ".join(f"{factor!r}*{name}" for factor, name in kept).replace("+ -", "- ")
    return f"{left} {relation} {bound!r}"


_TERMS = re.compile(rf"([-+]?)\s*(?:({_NUMBER_TEXT.replace('(', '(?:')})\s*\*\s*)?([A-Za-z_]\w*)")


def _kind_of(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "text"


# ---------------------------------------------------------------- the reference, from the schema
def reference() -> str:
    """The campaign file's reference as Markdown, generated from :data:`SCHEMA` (every key, its
    type and what it means), so the documentation cannot disagree with the validator."""
    lines = ["| Key | Accepts | Meaning |", "| --- | --- | --- |"]
    for path, schema, required in _walk(SCHEMA, ""):
        accepts = _accepts(schema)
        meaning = schema.get("description", "").replace("|", "\\|") + (" (required)" if required else "")
        lines.append(f"| `{path}` | {accepts} | {meaning} |")
    return "\n".join(lines)


def elsewhere_reference() -> str:
    """:data:`ELSEWHERE` as a Markdown table (the migration page's): each key from elsewhere and
    where the same thing goes in a campaign file, as ``aid2e validate`` says it."""
    lines = ["| Key from elsewhere | In an aid2e campaign file |", "| --- | --- |"]
    lines += [f"| `{key}` | {where.replace('|', chr(92) + '|')} |" for key, where in sorted(ELSEWHERE.items())]
    return "\n".join(lines)


def _walk(schema: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    required = set(schema.get("required", ()))
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        yield path, sub, key in required
        yield from _walk(sub, path)
        if sub.get("type") == "array" and isinstance(sub.get("items"), Mapping):
            yield from _walk(sub["items"], f"{path}[]")
        extra = sub.get("additionalProperties")
        if isinstance(extra, Mapping) and extra.get("properties"):
            yield from _walk(extra, f"{path}.<name>")


def _accepts(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kinds = schema.get("type")
    if kinds is None and "oneOf" in schema:
        kinds = [b.get("type") for b in schema["oneOf"] if b.get("type")]
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    return " or ".join(_TYPES.get(k, k) for k in kinds) or "see the meaning"


# ---------------------------------------------------------------- what a valid file says
def summary(data: Mapping[str, Any], source: str, statuses: Mapping[str, str] | None = None) -> str:
    """A few lines on a valid campaign: its parameters, objectives, jobs per trial and backends
    (with their ``statuses``, from :func:`backend_statuses`, when given)."""
    parameters = data["parameters"]
    kinds = {"bounds": "range", "choices": "choice", "value": "fixed"}
    lines = [f"{source}: campaign {data['name']!r}, valid"]
    lines.append(f"  parameters ({len(parameters)}): " + ", ".join(
        f"{name} ({next(kinds[k] for k in kinds if k in spec)})" for name, spec in parameters.items()))
    lines.append("  objectives: " + ", ".join(f"{direction(spec)} {name}" for name, spec in data["objectives"].items()))
    trial = data["trial"]
    stages = trial.get("stages")
    if stages:
        counts = _job_counts(data)
        total = sum(counts.values())
        lines.append(f"  trial: {len(stages)} stages, {total} jobs: " + ", ".join(
            f"{s['name']} x{counts[s['name']]} on {s.get('backend', trial.get('backend', 'the default runner'))}"
            for s in stages))
    else:
        kind = next(k for k in ("function", "script", "container") if k in trial)
        lines.append(f"  trial: one {kind} job on {trial.get('backend', 'the default runner')}")
    backends = data.get("backends") or {}
    if not backends:
        lines.append("  backends: none named (local cores)")
    elif statuses is None:
        lines.append("  backends: " + ", ".join(f"{n} ({b['type']})" for n, b in backends.items()))
    else:
        lines.append("  backends:")
        lines += [f"    {n} ({b['type']}): {statuses.get(n, 'status unknown')}" for n, b in backends.items()]
    return "\n".join(lines)


def backend_statuses(data: Mapping[str, Any]) -> dict[str, str]:
    """Each named backend's :meth:`~aid2e.Backend.status` (built from a checked file, asked, and
    closed: nothing is submitted)."""
    from .plugins import get_plugin_manager

    manager, statuses = get_plugin_manager(), {}
    for name, spec in (data.get("backends") or {}).items():
        runner = manager.backend(spec["type"]).factory(**{k: v for k, v in spec.items() if k != "type"})
        try:
            status = getattr(runner, "status", None)
            statuses[name] = " ".join(str(status()).split()) if callable(status) else "status unknown (not an " \
                                                                                    "aid2e.Backend)"
        except Exception as exc:  # a third party's status() must not break validate
            statuses[name] = f"status unknown: {type(exc).__name__}: {exc}"
        finally:
            close = getattr(runner, "close", None)
            if callable(close):
                close()
    return statuses


def direction(spec: Mapping[str, Any]) -> str:
    return "minimize" if spec["direction"] == "minimize" else "maximize"


def _job_counts(data: Mapping[str, Any]) -> dict[str, int]:
    """Jobs per trial of each stage of a checked file, from the workflow's own plan."""
    from .workflow import Stage, Workflow, plan

    workflow = Workflow([Stage(**{k: v for k, v in fields.items() if k != "backend"}) for fields in stage_fields(data)])
    return {name: len(jobs) for name, jobs in plan(workflow).items()}


__all__ = ["ELSEWHERE", "SCHEMA", "CampaignFileError", "Problem", "backend_statuses", "check", "elsewhere_reference",
           "load", "read", "reference", "stage_fields", "summary"]
