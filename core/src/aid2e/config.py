"""``AxScheduler``'s configuration: the seed's keys plus aid2e's, checked with one-line errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import asdict, fields, frozen

from .errors import ConfigError
from .units import duration_seconds, size_bytes


@frozen(kw_only=True)
class SchedulerConfig:
    """What ``AxScheduler(..., config={...})`` accepts.

    * ``monitoring_interval``: longest wait between status checks, seconds (backends that
      can signal a job's end wake the scheduler at once);
    * ``job_output_dir``: trial directories and saved state go under ``<dir>/<experiment>/``;
    * ``synchronous``: one trial at a time;
    * ``cleanup_after_completion``: remove a completed trial's directory (failed ones stay);
    * ``max_parallel_trials``: trials in flight (default: the runner's capacity);
    * ``tolerated_failure_rate``: stop launching when failed / max(finished, 5) exceeds it;
    * ``snapshot_interval``: seconds between full Ax snapshots while running (trial records
      are saved after every change regardless; see ``AxScheduler._save_state``);
    * ``max_retries``: times a trial is run again after an infrastructure failure (its job
      vanished, its node was lost); a script's own non-zero exit is never retried;
    * ``trial_timeout``: seconds after which a running trial is canceled and failed;
    * ``resources``: what each trial's job asks for, e.g. ``{"cpus": 4, "memory": "8G",
      "walltime": "02:00:00"}`` (fields of :class:`aid2e.types.Resources`); backends and the
      container engines map what they understand (Slurm ``--cpus-per-task``/``--mem``,
      ``podman run --cpus/--memory``).
    * ``load_if_exists``: when the campaign directory already holds this experiment's saved
      state, continue it (its trials, its Ax experiment) instead of refusing to start; like
      Optuna's ``create_study(load_if_exists=True)``. Without it a new campaign never writes
      over a saved one.
    """

    monitoring_interval: float = 10.0
    job_output_dir: str = "./aid2e_jobs"
    synchronous: bool = False
    cleanup_after_completion: bool = False
    max_parallel_trials: int | None = None
    tolerated_failure_rate: float = 0.5
    snapshot_interval: float = 30.0
    max_retries: int = 0
    trial_timeout: float | None = None
    resources: dict[str, Any] | None = None
    load_if_exists: bool = False

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> SchedulerConfig:
        if config is None:
            return cls()
        if isinstance(config, SchedulerConfig):
            return config
        if not isinstance(config, Mapping):
            raise ConfigError(f"config must be a dict, got {type(config).__name__}")
        reject_unknown_keys(config, [f.name for f in fields(cls)], "config")
        values = dict(config)
        _number(values, "monitoring_interval", minimum=0.0)
        _number(values, "tolerated_failure_rate", minimum=0.0, maximum=1.0)
        _number(values, "snapshot_interval", minimum=0.0)
        for key in ("synchronous", "cleanup_after_completion", "load_if_exists"):
            if key in values and not isinstance(values[key], bool):
                raise ConfigError(f"config {key!r} must be true or false, got {values[key]!r}")
        if "job_output_dir" in values:
            if not isinstance(values["job_output_dir"], (str, bytes)) and not hasattr(
                values["job_output_dir"], "__fspath__"
            ):
                raise ConfigError(f"config 'job_output_dir' must be a path, got {values['job_output_dir']!r}")
            values["job_output_dir"] = str(values["job_output_dir"])
        retries = values.get("max_retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"config 'max_retries' must be a non-negative integer, got {retries!r}")
        if values.get("trial_timeout") is not None:
            _number(values, "trial_timeout", minimum=0.001)
        limit = values.get("max_parallel_trials")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"config 'max_parallel_trials' must be a positive integer, got {limit!r}")
        if values.get("resources") is not None:
            values["resources"] = _resources(values["resources"])
        return cls(**values)

    def trial_resources(self) -> Any:
        """The :class:`aid2e.types.Resources` every trial's job asks for."""
        from .types import Resources

        return Resources(**(self.resources or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reject_unknown_keys(config: Mapping[str, Any], valid: Iterable[str], what: str) -> None:
    """Raise a one-line ConfigError naming the first unknown key of ``config`` and the valid ones
    (for the scheduler's config and for backends' ``config`` dicts alike)."""
    valid = sorted(valid)
    unknown = sorted(str(k) for k in config if k not in valid)
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {what} key {unknown[0]!r}; valid keys: {', '.join(valid)}{hint}")


def _number(values: dict[str, Any], key: str, *, minimum: float, maximum: float | None = None) -> None:
    if key not in values:
        return
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"config {key!r} must be a number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"config {key!r} must be {bound}, got {value!r}")
    values[key] = float(value)


def _resources(value: Any) -> dict[str, Any]:
    """Check config 'resources' field by field; returns a plain dict (saved with the state)."""
    from attrs import fields as attrs_fields

    from .types import Resources

    if not isinstance(value, Mapping):
        raise ConfigError(f"config 'resources' must be a dict like {{'cpus': 4, 'memory': '8G'}}, got {value!r}")
    reject_unknown_keys(value, [f.name for f in attrs_fields(Resources)], "config 'resources'")
    checked = dict(value)
    cpus = checked.get("cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ConfigError(f"config 'resources' 'cpus' must be a positive integer, got {cpus!r}")
    memory = checked.get("memory")
    if memory is not None:
        if isinstance(memory, int) and not isinstance(memory, bool):
            memory = f"{memory}M"  # a number here is MB, as its text form "4096" is
        try:
            size_bytes(memory)
        except ConfigError as exc:
            raise ConfigError(f"config 'resources' 'memory' must look like '512M' or '8G' (or '1.5G'), "
                              f"got {checked['memory']!r}") from exc
        checked["memory"] = memory.strip().upper()
    for key in ("walltime", "queue", "account"):
        if checked.get(key) is not None and not isinstance(checked[key], str):
            raise ConfigError(f"config 'resources' {key!r} must be a string, got {checked[key]!r}")
    if checked.get("walltime") is not None:
        try:
            duration_seconds(checked["walltime"])
        except ConfigError as exc:
            raise ConfigError(f"config 'resources' 'walltime' must look like '02:00:00', '1-00:00:00' or '2h', "
                              f"got {checked['walltime']!r}") from exc
    extra = checked.get("extra", {})
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ConfigError(f"config 'resources' 'extra' must map strings to strings, got {extra!r}")
    checked["extra"] = dict(extra)
    Resources(**checked)  # the record accepts it
    return checked
