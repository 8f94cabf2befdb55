"""Trials made of stages: the records that describe them and the plan of a trial's jobs.

A :class:`Workflow` is a list of :class:`Stage` s run in order. A stage runs a function, a script
or a container, once, or once per value of its ``fan_out`` (a dict of lists: their cartesian
product; or a list of dicts), or once per job of an earlier stage (``per=``, inheriting that
job's fan-out values). :func:`plan` turns a workflow into each stage's jobs, named by their
fan-out values; :func:`fill_argv` puts a job's trial parameters and fan-out values into a
script's argv (as argv elements: never through a shell).

Everything here is checked when a workflow is built: a bad stage is a one-line ConfigError
naming the stage and what to fix. Running workflows is issue 12's loop work; this module is its
description and plan, pure and tested on its own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

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
        where = f"stage {self.name!r}"
        if not isinstance(self.name, str) or not self.name or directory_name(self.name) != self.name:
            raise ConfigError(f"stage name {self.name!r} must be a non-empty name usable as a directory "
                              "(no '/', '%', '.' or '..')")
        given = [k for k in ("function", "script", "container") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(f"{where}: give exactly one of function=, script= or container= (got "
                              f"{', '.join(given) or 'none'})")
        if self.fan_out is not None and self.per is not None:
            raise ConfigError(f"{where}: per={self.per!r} takes the fan-out of that stage: remove fan_out")
        fan_out_values(self)  # checks the fan-out
        for code, action in self.exit_codes.items():
            if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 255:
                raise ConfigError(f"{where}: exit_codes keys must be exit codes 1 to 255, got {code!r}")
            if action not in EXIT_ACTIONS:
                raise ConfigError(f"{where}: exit code {code} must map to one of {', '.join(EXIT_ACTIONS)}, "
                                  f"got {action!r}")


@frozen
class Workflow:
    """The stages of every trial, run in order; the last stage's result is the trial's metrics."""

    stages: tuple[Stage, ...] = field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a Workflow needs at least one Stage")
        seen: set[str] = set()
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise ConfigError(f"a Workflow holds Stage objects, got {type(stage).__name__}")
            if stage.name in seen:
                raise ConfigError(f"two stages are named {stage.name!r}: stage names must be unique")
            if stage.per is not None and stage.per not in seen:
                raise ConfigError(f"stage {stage.name!r}: per={stage.per!r} names no earlier stage "
                                  f"(earlier: {', '.join(sorted(seen)) or 'none'})")
            seen.add(stage.name)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


@frozen
class PlannedJob:
    """One job of a trial: its stage, its name (a directory name, from its fan-out values) and
    its fan-out values."""

    stage: str
    name: str
    fan_out: Mapping[str, Any]


def fan_out_values(stage: Stage) -> list[dict[str, Any]]:
    """The fan-out values of ``stage``'s jobs (``[{}]`` without a fan-out), checked."""
    where = f"stage {stage.name!r}: fan_out"
    spec = stage.fan_out
    if spec is None:
        return [{}]
    if isinstance(spec, Mapping):
        if not spec:
            raise ConfigError(f"{where} is empty: give {{name: [values, ...]}}")
        for key, values in spec.items():
            _check_key(key, where)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ConfigError(f"{where} {key!r} must be a non-empty list of values, got {values!r}")
        keys = list(spec)
        combos = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(spec[k] for k in keys))]
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)) and spec:
        combos = []
        for item in spec:
            if not isinstance(item, Mapping) or not item:
                raise ConfigError(f"{where} as a list holds non-empty dicts of values, got {item!r}")
            for key in item:
                _check_key(key, where)
            if combos and set(item) != set(combos[0]):
                raise ConfigError(f"{where}: every dict names the same keys ({', '.join(combos[0])}), got {item!r}")
            combos.append(dict(item))
    else:
        raise ConfigError(f"{where} must be a dict of lists or a non-empty list of dicts, got {spec!r}")
    names = [job_name(c) for c in combos]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where} repeats a combination of values")
    return combos


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ConfigError(f"{where} names must be identifiers (used as {{name}} in argv), got {key!r}")


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
                                  f"nor a fan-out value (known: {', '.join(sorted(values)) or 'none'})")
            return str(values[name])

        return _PLACEHOLDER.sub(replace, str(arg))

    return [one(arg) for arg in argv]


__all__ = ["EXIT_ACTIONS", "PlannedJob", "Stage", "Workflow", "fan_out_values", "fill_argv", "job_name",
           "placeholders", "plan"]
