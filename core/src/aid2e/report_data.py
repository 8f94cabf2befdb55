"""What a campaign's report and dashboard show, computed from its saved state alone (no Ax, no
torch): the summary, each objective per trial with the best so far, the hypervolume per trial
and the Pareto set (with moocore, a library made for both), the parameters, every trial and
job with its output files, and the timing (generation per batch, queue wait and run per job,
trials in flight over time).

:func:`build` returns plain JSON; :mod:`aid2e.report_page` draws it in the browser, the same
way for ``aid2e report`` (one file) and ``aid2e dashboard`` (live). Values Ax never saw as data
are kept apart: a penalized trial's metrics are the campaign's penalty, drawn and marked as such,
never a best value or a Pareto point.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .jobs.files import STDERR_FILE, STDOUT_FILE
from .state import CampaignState, JobInfo, TrialInfo, read_state

#: The report's data format (a dashboard page checks it against the data it fetches).
FORMAT = 1


def build(path: str | Path, *, now: float | None = None) -> dict[str, Any]:
    """The report's data for the campaign saved under ``path`` (its state directory)."""
    state = read_state(path)
    now = time.time() if now is None else now
    home = Path(path).expanduser().resolve() if Path(path).is_dir() else state.source.parent.resolve()
    objectives = [{"name": name, "minimize": minimize, "threshold": state.thresholds.get(name)}
                  for name, minimize in (state.objectives or {}).items()]
    if not objectives:  # a state without Ax's snapshot: every metric, direction unknown
        objectives = [{"name": name, "minimize": None, "threshold": None} for name in state.metric_names()]
    trials = [_trial(t, home, now) for t in state.trials]
    usable = usable_trials(state, [o["name"] for o in objectives])
    data: dict[str, Any] = {
        "format": FORMAT,
        "name": state.name or home.name,
        "directory": str(home),
        "saved_at": state.saved_at,
        "built_at": now,
        "objectives": objectives,
        "parameters": _parameter_names(state.trials),
        "counts": {**state.counts(), "PENALIZED": sum(t.penalized for t in state.trials)},
        "usable": len(usable),  # completed trials Ax learned from (the sensitivity analysis is fitted to them)
        "elapsed": _elapsed(state.trials, now),
        "trials": trials,
        "trace": {o["name"]: _trace(state.trials, o["name"], o["minimize"]) for o in objectives},
        "pareto": [],
        "best": None,
        "hypervolume": [],
        "timing": _timing(state.trials, now),
    }
    directions = [o["minimize"] for o in objectives]
    if len(objectives) == 1 and directions[0] is not None:
        data["best"] = best_trial(usable, objectives[0]["name"], directions[0])
    elif len(objectives) > 1 and None not in directions:
        names = [o["name"] for o in objectives]
        data["pareto"] = pareto_set(usable, names, directions)
        reference = reference_point(usable, names, directions, [o["threshold"] for o in objectives])
        data["reference_point"] = reference
        data["hypervolume"] = hypervolume_trace(usable, names, directions, reference)
    return data


# ---------------------------------------------------------------- trials
def _trial(trial: TrialInfo, home: Path, now: float) -> dict[str, Any]:
    out = trial.to_json(now)
    out["files"] = _files(trial.workdir, home)
    for job, info in zip(out["jobs"], trial.jobs, strict=True):
        job["files"] = _files(info.workdir, home)
    out["backends"] = sorted({j["backend"] for j in out["jobs"] if j["backend"]} or
                             ({out["backend"]} if out["backend"] else set()))
    return out


def _files(workdir: str | None, home: Path) -> dict[str, str]:
    """A job's stdout and stderr files that exist, as paths relative to the campaign directory
    (regular files only: a trial directory is untrusted, a link there could point anywhere)."""
    if not workdir:
        return {}
    where = Path(workdir) if os.path.isabs(workdir) else home / workdir
    found = {}
    for label, name in (("stdout", STDOUT_FILE), ("stderr", STDERR_FILE)):
        path = where / name
        try:
            if path.is_file() and not path.is_symlink():
                found[label] = os.path.relpath(path, home)
        except OSError:
            continue
    return found


def _parameter_names(trials: Iterable[TrialInfo]) -> list[str]:
    names: dict[str, None] = {}
    for trial in trials:
        names.update(dict.fromkeys(trial.parameters))
    return list(names)


def _elapsed(trials: list[TrialInfo], now: float) -> float | None:
    starts = [t.started_at for t in trials if t.started_at is not None]
    if not starts:
        return None
    running = any(t.status == "RUNNING" for t in trials)
    ends = [t.ended_at for t in trials if t.ended_at is not None]
    end = now if running or not ends else max(ends)
    return max(0.0, end - min(starts))


def _mean(trial: TrialInfo, name: str) -> float | None:
    metric = trial.metrics.get(name) or {}
    mean = metric.get("mean")
    return float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else None


def usable_trials(state: CampaignState, names: list[str]) -> list[TrialInfo]:
    """Completed trials whose metrics Ax learned from: not penalized, every objective a number."""
    return [t for t in state.trials if t.status == "COMPLETED" and not t.penalized
            and all(_mean(t, name) is not None for name in names)]


# ---------------------------------------------------------------- optimization trace
def _trace(trials: list[TrialInfo], name: str, minimize: bool | None) -> list[dict[str, Any]]:
    """Each trial's value of objective ``name`` in index order, with the best so far (penalized
    and failed trials marked; they never set the best)."""
    points = []
    best = None
    for trial in trials:
        value = _mean(trial, name)
        kind = "failed" if trial.status in ("FAILED", "ABANDONED") else (
            "penalized" if trial.penalized else "running" if trial.status == "RUNNING" else "completed")
        if kind == "completed" and value is not None and minimize is not None:
            best = value if best is None or (value < best if minimize else value > best) else best
        if kind == "running":
            continue
        sem = (trial.metrics.get(name) or {}).get("sem")
        points.append({"index": trial.index, "value": value, "sem": sem, "kind": kind, "best": best,
                       "reason": trial.message.splitlines()[0][:200] if trial.message else ""})
    return points


def best_trial(usable: list[TrialInfo], name: str, minimize: bool) -> dict[str, Any] | None:
    """The best of ``usable`` trials in objective ``name``: its index, value and parameters."""
    if not usable:
        return None
    chosen = (min if minimize else max)(usable, key=lambda t: _mean(t, name))
    return {"index": chosen.index, "value": _mean(chosen, name), "parameters": chosen.parameters}


# ---------------------------------------------------------------- several objectives
def _matrix(trials: list[TrialInfo], names: list[str]) -> Any:
    import numpy as np

    return np.array([[_mean(t, name) for name in names] for t in trials], dtype=float).reshape(len(trials),
                                                                                               len(names))


def pareto_set(usable: list[TrialInfo], names: list[str], minimize: list[bool]) -> list[int]:
    """The indices of the non-dominated trials (moocore's ``is_nondominated``)."""
    import moocore

    if not usable:
        return []
    keep = moocore.is_nondominated(_matrix(usable, names), maximise=[not m for m in minimize], keep_weakly=True)
    return [t.index for t, kept in zip(usable, keep, strict=True) if kept]


def reference_point(usable: list[TrialInfo], names: list[str], minimize: list[bool],
                    thresholds: list[float | None]) -> list[float | None]:
    """The hypervolume's reference point: each objective's threshold, or (none given) the worst
    value observed, as Ax infers one."""
    point: list[float | None] = []
    for position, (threshold, lower) in enumerate(zip(thresholds, minimize, strict=True)):
        if threshold is not None:
            point.append(float(threshold))
            continue
        values = [_mean(t, names[position]) for t in usable]
        point.append((max if lower else min)(values) if values else None)  # type: ignore[type-var]
    return point


def hypervolume_trace(usable: list[TrialInfo], names: list[str], minimize: list[bool],
                      reference: list[float | None]) -> list[dict[str, Any]]:
    """The hypervolume of the trials so far (in index order) against ``reference``, after each
    usable trial (moocore's ``hypervolume``; points not better than the reference add nothing)."""
    import moocore
    import numpy as np

    if not usable or None in reference:
        return []
    ordered = sorted(usable, key=lambda t: t.index)
    values = _matrix(ordered, names)
    maximise = [not m for m in minimize]
    ref = np.array(reference, dtype=float)
    better = np.all(np.where(maximise, values > ref, values < ref), axis=1)
    trace, kept = [], []
    for position, trial in enumerate(ordered):
        if better[position]:
            kept.append(values[position])
        volume = float(moocore.hypervolume(np.array(kept), ref=ref, maximise=maximise)) if kept else 0.0
        trace.append({"index": trial.index, "value": volume})
    return trace


# ---------------------------------------------------------------- time
def _timing(trials: list[TrialInfo], now: float) -> dict[str, Any]:
    """Generation time per batch, each job's queue wait and run, and trials in flight over time."""
    generations: dict[tuple[float, str | None], dict[str, Any]] = {}
    for trial in trials:
        made = trial.generation
        if made and made.get("at") is not None:
            key = (made["at"], made.get("node"))
            entry = generations.setdefault(key, {"at": made["at"], "seconds": made.get("seconds"),
                                                 "node": made.get("node"), "trials": []})
            entry["trials"].append(trial.index)
    jobs = []
    for trial in trials:
        for job in trial.jobs or [_as_job(trial)]:
            if job.submitted_at is None:
                continue
            end = job.ended_at if job.ended_at is not None else (now if job.status == "RUNNING" else None)
            started = job.running_at
            jobs.append({"trial": trial.index, "job": f"{job.stage}/{job.name}" if trial.jobs else "",
                         "status": job.status, "backend": job.backend,
                         "queued": None if started is None else max(0.0, started - job.submitted_at),
                         "ran": None if started is None or end is None else max(0.0, end - started),
                         "total": None if end is None else max(0.0, end - job.submitted_at)})
    return {"generations": sorted(generations.values(), key=lambda g: g["at"]), "jobs": jobs,
            "in_flight": in_flight(trials, now)}


def _as_job(trial: TrialInfo) -> JobInfo:
    return JobInfo(stage="trial", name="job", status=trial.status, backend=trial.backend,
                   native_id=trial.native_id, workdir=trial.workdir, started_at=trial.started_at,
                   ended_at=trial.ended_at, submitted_at=trial.submitted_at, running_at=trial.running_at)


def in_flight(trials: Iterable[TrialInfo], now: float) -> list[list[float]]:
    """``[[time, trials running], ...]``: a step each time a trial starts or ends."""
    changes: list[tuple[float, int]] = []
    for trial in trials:
        if trial.started_at is None:
            continue
        changes.append((trial.started_at, 1))
        if trial.ended_at is not None:
            changes.append((trial.ended_at, -1))
    running, steps = 0, []
    for at, change in sorted(changes, key=lambda c: (c[0], c[1])):
        running += change
        steps.append([at, running])
    if steps and any(t.status == "RUNNING" for t in trials):
        steps.append([now, running])
    return steps


def counts_line(data: Mapping[str, Any]) -> str:
    """``12 completed (2 penalized), 1 failed, 0 abandoned, 3 running``."""
    counts = data["counts"]
    penalized = f" ({counts['PENALIZED']} penalized)" if counts.get("PENALIZED") else ""
    return (f"{counts['COMPLETED']} completed{penalized}, {counts['FAILED']} failed, {counts['ABANDONED']} abandoned, "
            f"{counts['RUNNING']} running")


__all__ = ["FORMAT", "best_trial", "build", "counts_line", "hypervolume_trace", "in_flight", "pareto_set",
           "reference_point", "usable_trials"]
