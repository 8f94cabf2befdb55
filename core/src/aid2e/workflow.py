"""Trials made of stages: the records that describe them and the plan of a trial's jobs.

A :class:`Workflow` is a list of :class:`Stage` s run in order. A stage runs a function, a script
or a container, once, or once per value of its ``fan_out`` (a dict of lists: their cartesian
product; or a list of dicts), or once per job of an earlier stage (``per=``, inheriting that
job's fan-out values). :func:`plan` turns a workflow into each stage's jobs, named by their
fan-out values; :func:`fill_argv` puts a job's trial parameters and fan-out values into a
script's argv (as argv elements: never through a shell).

Everything here is checked when a workflow is built: a bad stage is a one-line ConfigError
naming the stage and what to fix. The checks are pure functions over a stage's fields,
:func:`stage_problems` and :func:`workflow_problems`, which give every problem as a
:class:`StageProblem` (the stage's position, the key at fault, what is wrong): a campaign file's
validator asks the same functions and names key paths (``trial.stages[2].per``) from them, so
the two cannot disagree. :mod:`aid2e.stages` runs workflows; this module is their description
and plan, pure and tested on its own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from .campaign import directory_name, escape
from .errors import ConfigError

#: What a stage's ``exit_codes`` may map an exit code to.
EXIT_ACTIONS = ("penalty", "infeasible", "fail")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


@frozen(kw_only=True)
class Stage:
    """One stage of a trial: what it runs (exactly one of ``function``, ``script``,
    ``container``), on which ``backend`` (None: the scheduler's), how it fans out, the resources
    each of its jobs asks for, and what its scripts' exit codes mean."""

    name: str = field(kw_only=False)
    function: Callable[..., Any] | str | None = None
    script: str | Sequence[str] | None = None
    container: Mapping[str, Any] | None = None
    backend: Any = None
    fan_out: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None = None
    per: str | None = None
    resources: Mapping[str, Any] | None = None
    exit_codes: Mapping[int, str] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        _raise_first(stage_problems(fields_of(self)))


@frozen
class Workflow:
    """The stages of every trial, run in order; the last stage's result is the trial's metrics."""

    stages: tuple[Stage, ...] = field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a Workflow needs at least one Stage")
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise ConfigError(f"a Workflow holds Stage objects, got {type(stage).__name__}")
        _raise_first(workflow_problems([fields_of(stage) for stage in self.stages]))

    def stage(self, name: str) -> Stage:
        """The stage named ``name`` (``StopIteration`` when there is none)."""
        return next(s for s in self.stages if s.name == name)


@frozen
class PlannedJob:
    """One job of a trial: its stage, its name (a directory name, from its fan-out values) and
    its fan-out values."""

    stage: str
    name: str
    fan_out: Mapping[str, Any]


def fan_out_values(stage: Stage) -> list[dict[str, Any]]:
    """The fan-out values of ``stage``'s jobs (``[{}]`` without a fan-out)."""
    try:
        return _combinations(stage.fan_out)
    except ValueError as exc:  # a Stage is checked when made: only a bypassed check lands here
        raise ConfigError(f"stage {stage.name!r}: fan_out: {exc}") from exc


def _combinations(spec: Any) -> list[dict[str, Any]]:
    """The fan-out values ``spec`` gives, or a ``ValueError`` saying what is wrong with it."""
    if spec is None:
        return [{}]
    if isinstance(spec, Mapping):
        if not spec:
            raise ValueError("is empty: give {name: [values, ...]}")
        for key, values in spec.items():
            _check_key(key)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"{key!r} must be a non-empty list of values, got {values!r}")
        keys = list(spec)
        combos = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(spec[k] for k in keys))]
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)) and spec:
        combos = []
        for item in spec:
            if not isinstance(item, Mapping) or not item:
                raise ValueError(f"as a list holds non-empty dicts of values, got {item!r}")
            for key in item:
                _check_key(key)
            if combos and set(item) != set(combos[0]):
                raise ValueError(f"every dict names the same keys ({', '.join(combos[0])}), got {item!r}")
            combos.append(dict(item))
    else:
        raise ValueError(f"must be a dict of lists or a non-empty list of dicts, got {spec!r}")
    names = [job_name(c) for c in combos]
    if len(set(names)) != len(names):
        raise ValueError("repeats a combination of values")
    return combos


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ValueError(f"names must be identifiers (used as {{name}} in argv), got {key!r}")


# ---------------------------------------------------------------- the checks, as data
@frozen
class StageProblem:
    """One thing wrong with a workflow's stages: the stage's position and name, the key at fault
    (``""``: the stage as a whole; ``container.command`` for a container's command) and what is
    wrong, saying what is accepted."""

    index: int
    stage: str
    key: str
    what: str

    def message(self) -> str:
        """As the Python API says it: ``stage 'reco': per: 'sim' names no earlier stage (...)``."""
        return f"stage {self.stage!r}: {self.key}: {self.what}" if self.key else f"stage {self.stage!r}: {self.what}"


def fields_of(stage: Stage) -> dict[str, Any]:
    """A :class:`Stage` as the mapping :func:`stage_problems` reads (a campaign file's stage is one)."""
    return attrs.asdict(stage, recurse=False)


def stage_problems(stage: Mapping[str, Any], index: int = 0) -> list[StageProblem]:
    """What is wrong with one stage on its own (``stage``: :class:`Stage` 's fields; ``index``:
    its position): its name, what it runs, its fan-out, its exit codes."""
    name = stage.get("name")
    problems: list[StageProblem] = []

    def problem(key: str, what: str) -> None:
        problems.append(StageProblem(index, str(name), key, what))

    if not isinstance(name, str) or not name or directory_name(name) != name:
        problem("name", f"{name!r} must be a non-empty name usable as a directory (no '/', '%', '.' or '..')")
    given = [k for k in ("function", "script", "container") if stage.get(k) is not None]
    if len(given) != 1:
        problem("", f"give exactly one of function, script or container (got {', '.join(given) or 'none'})")
    if stage.get("fan_out") is not None and stage.get("per") is not None:
        problem("fan_out", f"per: {stage['per']} takes that stage's fan-out: remove fan_out")
    else:
        try:
            _combinations(stage.get("fan_out"))
        except ValueError as exc:
            problem("fan_out", str(exc))
    codes = stage.get("exit_codes") or {}
    for code, action in (codes.items() if isinstance(codes, Mapping) else ()):
        if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 255:
            problem("exit_codes", f"{code!r} is not an exit code 1 to 255")
        elif action not in EXIT_ACTIONS:
            problem(f"exit_codes.{code}", f"must be one of {', '.join(EXIT_ACTIONS)}, got {action!r}")
    return problems


def workflow_problems(stages: Sequence[Mapping[str, Any]], parameter_names: Collection[str] | None = None, *,
                      to_run: bool = False) -> list[StageProblem]:
    """Every problem of a workflow's ``stages`` (each as :func:`stage_problems` reads it): each
    stage's own, names used twice, ``per`` naming no earlier stage; ``to_run``, also a last stage
    that does not run once (it gives the trial's metrics); with the trial's ``parameter_names``,
    also fan-out values named like a parameter and argv ``{name}`` s that are neither."""
    problems = [p for index, stage in enumerate(stages) for p in stage_problems(stage, index)]
    broken = {p.index for p in problems}
    earlier: list[Any] = []  # the names of the stages so far
    keys: dict[str, set[str]] = {}  # a well-formed stage's name -> its jobs' fan-out keys
    jobs: dict[str, int] = {}  # -> how many jobs it has
    for index, stage in enumerate(stages):
        name, per = stage.get("name"), stage.get("per")

        def problem(key: str, what: str, index: int = index, name: Any = name) -> None:
            problems.append(StageProblem(index, str(name), key, what))

        if name in earlier:
            problem("name", f"{name!r} names two stages: stage names must be unique")
            continue
        if per is not None and per not in earlier:
            problem("per", f"{per!r} names no earlier stage (earlier: {', '.join(map(str, earlier)) or 'none'})")
        earlier.append(name)
        if index in broken or (per is not None and per not in keys):  # said already
            continue
        combos = _combinations(stage.get("fan_out"))
        keys[name] = keys[per] if per is not None else set(combos[0])
        jobs[name] = jobs[per] if per is not None else len(combos)
        if parameter_names is None:
            continue
        clash = sorted(keys[name] & set(parameter_names))
        if clash and per is None:
            problem("fan_out", f"{', '.join(clash)} is also a trial parameter: rename the fan-out value")
        argv, key = _argv_of(stage)
        if argv is not None:
            what = argv_problem(argv, set(parameter_names) | keys[name])
            if what is not None:
                problem(key, what)
    last = stages[-1] if stages and to_run else None
    if last is not None and len(stages) - 1 not in {p.index for p in problems} and jobs.get(last.get("name"), 1) != 1:
        problems.append(StageProblem(len(stages) - 1, str(last.get("name")), "", (
            "the last stage gives the trial's metrics, so it runs once: remove its fan_out/per, or add a stage "
            "after it that merges its jobs' outputs")))
    return problems


def _argv_of(stage: Mapping[str, Any]) -> tuple[Sequence[str] | None, str]:
    """A stage's argv (a script's list, a container's command) and its key; None: no argv."""
    script = stage.get("script")
    if isinstance(script, Sequence) and not isinstance(script, (str, bytes)):
        return [str(a) for a in script], "script"
    container = stage.get("container")
    command = container.get("command") if isinstance(container, Mapping) else None
    if isinstance(command, str):
        return [command], "container.command"
    if isinstance(command, Sequence) and not isinstance(command, bytes):
        return [str(a) for a in command], "container.command"
    return None, ""


def argv_problem(argv: Sequence[str], known: Collection[str]) -> str | None:
    """What is wrong with the ``{name}`` s of ``argv`` when ``known`` are the names a job has
    (an unmatched brace, a name that is neither a trial parameter nor a fan-out value), or None."""
    try:
        fill_argv(argv, dict.fromkeys(known, ""))
    except ConfigError as exc:
        return str(exc)
    return None


def _raise_first(problems: Sequence[StageProblem]) -> None:
    if problems:
        raise ConfigError(problems[0].message())


def job_name(values: Mapping[str, Any]) -> str:
    """A job's directory name from its fan-out values: ``particle=pi+,eta=1.5`` (``job`` without
    any); distinct values give distinct names, and the name never leaves its stage directory."""
    if not values:
        return "job"
    # ',' and '=' escaped too, so names are distinct for distinct values; a name always holds
    # 'key=', so it is never '.' or '..'
    return ",".join(f"{k}={escape(str(v), ',=')}" for k, v in values.items())


def plan(workflow: Workflow) -> dict[str, list[PlannedJob]]:
    """Each stage's jobs, in order. A ``per`` stage has one job per job of the stage it names,
    with the same name and values; other stages fan out on their own or run once."""
    jobs: dict[str, list[PlannedJob]] = {}
    for stage in workflow.stages:
        if stage.per is not None:
            jobs[stage.name] = [PlannedJob(stage.name, j.name, j.fan_out) for j in jobs[stage.per]]
        else:
            jobs[stage.name] = [PlannedJob(stage.name, job_name(v), v) for v in fan_out_values(stage)]
    return jobs


def placeholders(argv: Iterable[str]) -> set[str]:
    """The ``{name}`` s an argv uses (``{{`` and ``}}`` are literal braces)."""
    found: set[str] = set()
    for arg in argv:
        for match in _PLACEHOLDER.finditer(str(arg)):
            if match.group(1):
                found.add(match.group(1))
    return found


def fill_argv(argv: Sequence[str], values: Mapping[str, Any]) -> list[str]:
    """``argv`` with each ``{name}`` replaced by ``values[name]`` (a trial parameter or fan-out
    value) as text; ``{{``/``}}`` give literal braces. Each element stays one argv element."""
    def one(arg: str) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            name = match.group(1)
            if name is None:
                raise ConfigError(f"argv element {arg!r} has an unmatched {token!r} (write {token * 2} for a "
                                  "literal brace)")
            if name not in values:
                raise ConfigError(f"argv element {arg!r} names {{{name}}}, which is neither a trial parameter "
                                  f"nor a fan-out value of this stage (known: {', '.join(sorted(values)) or 'none'})")
            return str(values[name])

        return _PLACEHOLDER.sub(replace, str(arg))

    return [one(arg) for arg in argv]


__all__ = ["EXIT_ACTIONS", "PlannedJob", "Stage", "StageProblem", "Workflow", "argv_problem", "fan_out_values",
           "fields_of", "fill_argv", "job_name", "placeholders", "plan", "stage_problems", "workflow_problems"]
