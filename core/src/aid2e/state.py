"""Reading a campaign's saved state without Ax: what ``aid2e status`` shows.

:class:`~aid2e.ax_scheduler.AxScheduler` keeps its state in ``<job_output_dir>/<experiment>/``:
``trials.json`` (rewritten after every change: each trial's parameters, status, job handle,
metrics or failure reason) and ``experiment.json`` (the same records plus the Ax snapshot,
rewritten less often). ``save_experiment`` writes one file of the second form. This module
reads any of them with the standard library only (no Ax, no torch, no cattrs), so looking at a
campaign is instant and works while it runs.

:func:`read_state` returns a :class:`CampaignState`; anything it cannot read (a missing path, a
truncated or foreign file, a newer format) is a one-line :class:`~aid2e.errors.ConfigError`
naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: The one definition of the state files' format (the writer, :mod:`aid2e.state_records`, uses it).
STATE_FORMAT = "aid2e-experiment"
#: 2: the Ax snapshot is compacted (see ``AxBridge.snapshot``); version 1 files read the same.
STATE_VERSION = 2
TRIALS_FILE = "trials.json"
EXPERIMENT_FILE = "experiment.json"
STATUSES = ("COMPLETED", "FAILED", "RUNNING", "ABANDONED")
#: The keys of a saved trial record (``aid2e.trials.TrialRecord``'s fields).
RECORD_KEYS = frozenset({"index", "parameters", "status", "handle", "message", "metrics", "started_at",
                         "running_at", "ended_at", "attempts", "token", "penalized", "jobs", "generation"})
#: A workflow job's statuses and the keys of its saved record (``aid2e.trials.JobRecord``'s fields).
JOB_STATUSES = ("WAITING", "RUNNING", "COMPLETED", "FAILED", "CANCELED")
JOB_KEYS = frozenset({"stage", "name", "fan_out", "status", "handle", "attempts", "token", "message", "output",
                      "started_at", "running_at", "ended_at"})

_NAME = re.compile(r"\s*(-?)\s*([A-Za-z_][A-Za-z0-9_.:]*)\s*\Z")


@dataclass(frozen=True)
class JobInfo:
    """One job of a trial made of stages, as the saved records describe it."""

    stage: str
    name: str
    status: str
    backend: str | None = None
    native_id: str | None = None
    workdir: str | None = None
    attempts: int = 1
    message: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    submitted_at: float | None = None  # its current attempt's submission (its handle's)
    running_at: float | None = None  # first seen running: the queue wait is running_at - submitted_at

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "job": self.name, "status": self.status, "backend": self.backend,
                "job_id": self.native_id, "workdir": self.workdir, "attempts": self.attempts,
                "started_at": self.started_at, "submitted_at": self.submitted_at, "running_at": self.running_at,
                "ended_at": self.ended_at, "message": self.message}


@dataclass(frozen=True)
class TrialInfo:
    """One trial as the saved records describe it."""

    index: int
    parameters: dict[str, Any]
    status: str
    backend: str | None = None
    native_id: str | None = None
    workdir: str | None = None
    message: str = ""
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    penalized: bool = False  # COMPLETED with the campaign's penalty values after its job failed
    jobs: list[JobInfo] = field(default_factory=list)  # a trial made of stages: its jobs
    submitted_at: float | None = None  # its one job's current attempt's submission
    running_at: float | None = None  # first seen running
    generation: dict[str, Any] | None = None  # the Ax generation that made it (TrialRecord.generation)

    def runtime(self, now: float) -> float | None:
        """Seconds from start to end (to ``now`` while it runs); ``None`` if unknown."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (now if self.status == "RUNNING" else None)
        return None if end is None else max(0.0, end - self.started_at)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "index": self.index,
            "parameters": self.parameters,
            "status": self.status,
            "backend": self.backend,
            "job_id": self.native_id,
            "workdir": self.workdir,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "runtime": self.runtime(now),
            "metrics": self.metrics,
            "message": self.message,
            "penalized": self.penalized,
            "jobs": [job.to_json() for job in self.jobs],
            "submitted_at": self.submitted_at,
            "running_at": self.running_at,
            "generation": self.generation,
        }


@dataclass(frozen=True)
class CampaignState:
    """A campaign's trials and what is known of its objectives, read from ``source``."""

    source: Path
    name: str | None
    saved_at: float | None
    trials: list[TrialInfo]
    #: objective name -> minimize, in order; ``None`` when the saved state does not say
    #: (only ``trials.json``, or an objective expression that is not plain metric names)
    objectives: dict[str, bool] | None = None
    multi_objective: bool = False
    #: objective name -> its threshold (Ax's objective thresholds: the reference point of the
    #: hypervolume), for those that have an absolute one
    thresholds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for trial in self.trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def metric_names(self) -> list[str]:
        return sorted({name for t in self.trials for name in t.metrics})

    def best(self) -> dict[str, tuple[float, int, bool]]:
        """``{objective: (best mean, trial index, minimize)}`` over completed trials (a penalized
        trial's values are the campaign's penalty, not a result: never the best)."""
        found: dict[str, tuple[float, int, bool]] = {}
        for name, minimize in (self.objectives or {}).items():
            for trial in self.trials:
                metric = trial.metrics.get(name) if trial.status == "COMPLETED" and not trial.penalized else None
                mean = metric.get("mean") if metric else None
                if not isinstance(mean, (int, float)) or not math.isfinite(mean):
                    continue
                if name not in found or (mean < found[name][0] if minimize else mean > found[name][0]):
                    found[name] = (float(mean), trial.index, minimize)
        return found


def read_state(path: str | Path) -> CampaignState:
    """The saved state at ``path``: an experiment directory, its ``experiment.json`` or
    ``trials.json``, or a file written by ``save_experiment``.

    For a directory, the trial records come from whichever of ``trials.json`` and
    ``experiment.json`` was saved last (as ``load_experiment`` does); the objectives from
    ``experiment.json``.
    """
    source = Path(path).expanduser()
    if source.is_dir():
        trials_doc = read_document(source / TRIALS_FILE, required=False)
        experiment_doc = read_document(source / EXPERIMENT_FILE, required=False)
        if trials_doc is None and experiment_doc is None:
            raise ConfigError(
                f"no saved state in {source}: expected {TRIALS_FILE} or {EXPERIMENT_FILE} "
                "(give the directory <job_output_dir>/<experiment name>/)"
            )
    elif source.exists():
        document = read_document(source, required=True)
        trials_doc, experiment_doc = (document, None) if "ax" not in document else (None, document)
    else:
        parent = source.parent
        hint = f" (the directory {parent} does not exist either)" if not parent.exists() else ""
        raise ConfigError(f"no campaign state at {source}: no such file or directory{hint}")

    trials_path = source / TRIALS_FILE if source.is_dir() else source
    experiment_path = source / EXPERIMENT_FILE if source.is_dir() else source
    # both are checked (a damaged file is reported even when the other one is newer)
    from_trials = _trials(trials_doc, trials_path) if trials_doc is not None else None
    from_experiment = _trials(experiment_doc, experiment_path) if experiment_doc is not None else None
    if from_trials is not None and (
        experiment_doc is None or saved_at(trials_doc) >= saved_at(experiment_doc)
    ):
        chosen, chosen_path, trials = trials_doc, trials_path, from_trials
    else:
        chosen, chosen_path, trials = experiment_doc, experiment_path, from_experiment
    assert chosen is not None and trials is not None
    objectives, multi = _objectives(experiment_doc) if experiment_doc is not None else (None, False)
    return CampaignState(
        source=chosen_path,
        name=_experiment_name(experiment_doc, trials, source),
        saved_at=saved_at(chosen),
        trials=trials,
        objectives=objectives,
        multi_objective=multi,
        thresholds=_thresholds(experiment_doc) if experiment_doc is not None else {},
    )


# ---------------------------------------------------------------- reading and checking
def read_document(path: Path, *, required: bool = True) -> dict[str, Any] | None:
    """One state file, checked (format, version, trial list); a one-line ConfigError naming
    the file and what is wrong. ``None`` for a missing file that is not ``required``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"no campaign state at {path}: no such file") from None
        return None
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a directory, not a state file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ConfigError(f"{path} is empty (a state file cut off while being written?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a text (JSON) file: byte {exc.start} is not UTF-8") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        end = text.rstrip()
        truncated = exc.msg != "Extra data" and (exc.pos >= len(end) or not end.endswith(("}", "]")))
        what = "is truncated (cut off mid-document)" if truncated else "is not valid JSON"
        raise ConfigError(f"{path} {what}: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError:  # its traceback would be thousands of frames: the message says it all
        raise ConfigError(f"{path} is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ConfigError(
            f"{path} is not an aid2e state file (no \"format\": \"{STATE_FORMAT}\"; aid2e writes "
            f"{TRIALS_FILE}, {EXPERIMENT_FILE} and save_experiment files)"
        )
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{path} has no valid format version (got {version!r})")
    if version > STATE_VERSION:
        raise ConfigError(
            f"{path} has format version {version}, newer than this aid2e reads ({STATE_VERSION}): upgrade aid2e"
        )
    if version < 1:
        raise ConfigError(f"{path} has format version {version}; this aid2e reads 1 to {STATE_VERSION}")
    scheduler = document.get("scheduler")
    if not isinstance(scheduler, dict) or not isinstance(scheduler.get("trials"), list):
        raise ConfigError(f"{path} lacks the trial records (\"scheduler\": {{\"trials\": [...]}})")
    return document


def saved_at(document: Mapping[str, Any]) -> float:
    value = document.get("saved_at")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def document_text(scheduler_json: str, saved_at: float, ax: Any = None) -> str:
    """A state file's text: the format header, the scheduler part ``scheduler_json`` (already JSON
    text: its finished trial records are encoded once and reused, see
    :class:`aid2e.state_records.RecordEncoder`), and Ax's snapshot ``ax`` when given.
    ``saved_at`` is when the trial records were taken, not when the file is written: a snapshot
    made later on Ax's thread must not look newer than a ``trials.json`` written in between."""
    head = json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION, "saved_at": saved_at})
    tail = "" if ax is None else f', "ax": {json.dumps(ax)}'
    return f'{head[:-1]}, "scheduler": {scheduler_json}{tail}}}'


def _trials(document: Mapping[str, Any], path: Path) -> list[TrialInfo]:
    trials = []
    for position, record in enumerate(document["scheduler"]["trials"]):
        try:
            trials.append(_trial(record))
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: trial record #{position} is malformed: {exc}") from exc
    return sorted(trials, key=lambda t: t.index)


def check_record(record: Any) -> dict[str, Any]:
    """The one rule a saved trial record follows (``aid2e status`` and resume both apply it):
    an object with only :data:`RECORD_KEYS`, an integer ``index``, ``parameters`` an object,
    ``status`` one of :data:`STATUSES`, ``handle`` an object or null, ``metrics`` an object.
    Returns it; raises TypeError or ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise TypeError(f"expected an object, got {type(record).__name__}")
    unknown = sorted(set(record) - RECORD_KEYS, key=str)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    index = record.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"'index' must be an integer, got {index!r}")
    if not isinstance(record.get("parameters"), dict):
        raise TypeError(f"'parameters' must be an object, got {type(record.get('parameters')).__name__}")
    status = record.get("status", "RUNNING")
    if status not in STATUSES:
        raise ValueError(f"unknown 'status' {status!r}")
    for key in ("handle", "metrics", "generation"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise TypeError(f"'{key}' must be an object, got {type(record[key]).__name__}")
    jobs = record.get("jobs") or []
    if not isinstance(jobs, list):
        raise TypeError(f"'jobs' must be a list, got {type(jobs).__name__}")
    for position, job in enumerate(jobs):
        try:
            check_job(job)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"job #{position}: {exc}") from exc
    return record


def check_job(job: Any) -> dict[str, Any]:
    """The rule a saved workflow job record follows: an object with only :data:`JOB_KEYS`,
    ``stage`` and ``name`` text, ``status`` one of :data:`JOB_STATUSES`, ``handle`` and
    ``fan_out`` objects (or null), ``attempts`` a positive integer."""
    if not isinstance(job, dict):
        raise TypeError(f"expected an object, got {type(job).__name__}")
    unknown = sorted(set(job) - JOB_KEYS, key=str)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    for key in ("stage", "name"):
        if not isinstance(job.get(key), str) or not job[key]:
            raise TypeError(f"'{key}' must be a non-empty string, got {job.get(key)!r}")
    if job.get("status", "WAITING") not in JOB_STATUSES:
        raise ValueError(f"unknown job 'status' {job.get('status')!r}")
    for key in ("handle", "fan_out"):
        if job.get(key) is not None and not isinstance(job[key], dict):
            raise TypeError(f"'{key}' must be an object, got {type(job[key]).__name__}")
    attempts = job.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise TypeError(f"'attempts' must be a positive integer, got {attempts!r}")
    return job


def _trial(record: Any) -> TrialInfo:
    check_record(record)
    index = record["index"]
    parameters = record["parameters"]
    status = record.get("status", "RUNNING")
    handle = record.get("handle") or {}
    metrics = {}
    raw_metrics = record.get("metrics") or {}
    for name, value in raw_metrics.items():
        if isinstance(value, dict):
            metrics[str(name)] = {"mean": _num(value.get("mean")), "sem": _num(value.get("sem"))}
        else:
            metrics[str(name)] = {"mean": _num(value), "sem": None}
    message = record.get("message") or ""
    jobs = []
    for job in record.get("jobs") or []:
        job_handle = job.get("handle") or {}
        text = job.get("message") or ""
        jobs.append(JobInfo(stage=job["stage"], name=job["name"], status=job.get("status", "WAITING"),
                            backend=_str_or_none(job_handle.get("backend")),
                            native_id=_str_or_none(job_handle.get("native_id")),
                            workdir=_str_or_none(job_handle.get("workdir")), attempts=job.get("attempts", 1),
                            message=text if isinstance(text, str) else str(text),
                            started_at=_num(job.get("started_at")), ended_at=_num(job.get("ended_at")),
                            submitted_at=_num(job_handle.get("submitted_at")), running_at=_num(job.get("running_at"))))
    return TrialInfo(
        index=index,
        parameters=parameters,
        status=status,
        backend=_str_or_none(handle.get("backend")),
        native_id=_str_or_none(handle.get("native_id")),
        workdir=_str_or_none(handle.get("workdir")),
        message=message if isinstance(message, str) else str(message),
        metrics=metrics,
        started_at=_num(record.get("started_at")),
        ended_at=_num(record.get("ended_at")),
        penalized=record.get("penalized") is True,
        jobs=jobs,
        submitted_at=_num(handle.get("submitted_at")),
        running_at=_num(record.get("running_at")),
        generation=_generation(record.get("generation")),
    )


def _generation(value: Any) -> dict[str, Any] | None:
    """A saved generation's facts, each kept only when of the right kind (the file may be edited)."""
    if not isinstance(value, dict):
        return None
    facts: dict[str, Any] = {key: _num(value.get(key)) for key in ("at", "seconds")}
    size = value.get("size")
    facts["size"] = size if isinstance(size, int) and not isinstance(size, bool) else None
    facts["node"] = value["node"] if isinstance(value.get("node"), str) else None
    return facts


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------- what the Ax snapshot says
def _objectives(document: Mapping[str, Any]) -> tuple[dict[str, bool] | None, bool]:
    """``({objective: minimize}, several?)`` from the Ax snapshot's optimization config, read as
    plain JSON; ``(None, several?)`` when it does not name plain metrics (e.g. ``2*a + b``)."""
    try:
        config = document["ax"]["snapshot"]["experiment"]["optimization_config"]
        objective = config["objective"]
    except (KeyError, TypeError):
        return None, False
    multi = "MultiObjective" in str(config.get("__type", ""))
    if not isinstance(objective, dict):
        return None, multi
    expression = objective.get("expression")
    if isinstance(expression, str):  # Ax >= 1.x: "-loss" or "a, -b"
        result = {}
        for term in expression.split(","):
            match = _NAME.match(term)
            if match is None:
                return None, multi
            result[match.group(2)] = match.group(1) == "-"
        return result, multi or len(result) > 1
    # older snapshots: {"metric": {"name": ...}, "minimize": bool} or {"objectives": [...]}
    parts = objective.get("objectives") if isinstance(objective.get("objectives"), list) else [objective]
    result = {}
    for part in parts:
        name = (part.get("metric") or {}).get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or not isinstance(part.get("minimize"), bool):
            return None, multi
        result[name] = part["minimize"]
    return result, multi or len(result) > 1


def _thresholds(document: Mapping[str, Any]) -> dict[str, float]:
    """``{objective: bound}`` from the snapshot's absolute objective thresholds, read as plain JSON."""
    try:
        given = document["ax"]["snapshot"]["experiment"]["optimization_config"].get("objective_thresholds")
    except (KeyError, TypeError, AttributeError):
        return {}
    found = {}
    for threshold in given if isinstance(given, list) else []:
        try:
            name, bound = threshold["metric"]["name"], threshold["bound"]
        except (KeyError, TypeError):
            continue
        number = _num(bound)
        if isinstance(name, str) and number is not None and math.isfinite(number) and not threshold.get("relative"):
            found[name] = number
    return found


def _experiment_name(document: Mapping[str, Any] | None, trials: list[TrialInfo], source: Path) -> str | None:
    try:
        name = document["ax"]["snapshot"]["experiment"]["name"]  # type: ignore[index]
        if isinstance(name, str):
            return name
    except (KeyError, TypeError):
        pass
    if source.is_dir():
        return source.name
    if source.name in (TRIALS_FILE, EXPERIMENT_FILE):
        return source.parent.name
    return None


__all__ = ["EXPERIMENT_FILE", "JOB_KEYS", "JOB_STATUSES", "RECORD_KEYS", "STATE_FORMAT", "STATE_VERSION", "STATUSES",
           "TRIALS_FILE", "CampaignState", "JobInfo", "TrialInfo", "check_job", "check_record", "document_text",
           "read_document", "read_state", "saved_at"]
