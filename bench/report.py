"""Targets of issue 6 and the Markdown tables ``bench/run.py`` prints (pure functions of results)."""

from __future__ import annotations

import math
from typing import Any

SOBOL_RATIO = 1.10  # quasi-random runs: wall <= 1.10 x ideal
SPEEDUP = 7.0  # ... and at least 7x faster than Client.run_trials on the 24-trial run
BOTORCH_RATIO = 1.15  # BoTorch runs: wall <= 1.15 x max(ideal, total generation time)
OVERHEAD_MS = 2.0
PLUGINS_LIST_S = 0.3
STATE_LOAD_S = 2.0
HEAVY = ("torch", "ax")


def _ok(result: dict[str, Any]) -> bool:
    return "error" not in result and "skipped" not in result


def _target(name: str, figure: float | str, limit: str, passed: bool | None, note: str = "") -> dict[str, Any]:
    return {"target": name, "figure": figure, "limit": limit,
            "result": "n/a" if passed is None else ("PASS" if passed else "MISS"), "note": note}


def _side_by_label(side: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["label"]: r for r in side}


def targets(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every target of the issue that the chosen items measured, with PASS/MISS."""
    out: list[dict[str, Any]] = []
    side = _side_by_label(results.get("side", []))
    for label, r in side.items():
        if not label.split()[2].startswith("aid2e"):
            continue
        if not _ok(r):
            out.append(_target(f"{label}: runs", r.get("error", r.get("skipped", "")), "completes", False))
            continue
        if r["strategy"] == "sobol":
            out.append(_target(f"{label}: wall / ideal", round(r["ratio_to_ideal"], 3), f"<= {SOBOL_RATIO}",
                               r["ratio_to_ideal"] <= SOBOL_RATIO and r["completed"] == r["trials"]))
            client = side.get(f"sobol {r['trials']} client")
            if r["trials"] == 24 and client is not None and _ok(client):
                speedup = client["wall_s"] / r["wall_s"]
                out.append(_target(f"{label}: Client.run_trials wall / aid2e wall", round(speedup, 2),
                                   f">= {SPEEDUP}", speedup >= SPEEDUP))
        else:
            bound = max(r["ideal_s"], r["generation_s"])
            ratio = r["wall_s"] / bound
            out.append(_target(f"{label}: wall / max(ideal, generation)", round(ratio, 3),
                               f"<= {BOTORCH_RATIO}", ratio <= BOTORCH_RATIO and r["completed"] == r["trials"]))
    for r in results.get("overhead", []):
        if _ok(r):
            out.append(_target(f"overhead per trial, {r['trials']} trials, {r['backend']} (ms)",
                               round(r["overhead_ms_per_trial"], 2), f"<= {OVERHEAD_MS}",
                               r["overhead_ms_per_trial"] <= OVERHEAD_MS))
        else:
            out.append(_target(f"overhead ({r['label']})", r.get("error", ""), "completes", False))
    for r in results.get("startup", []):
        if not _ok(r) or "error" in r["plugins_list"] or "error" in r["import_aid2e"]:
            out.append(_target("start-up", str(r.get("error") or r), "runs", False))
            continue
        cold = r["plugins_list"]["first_s"]
        out.append(_target("aid2e plugins list, first run (s)", round(cold, 3), f"<= {PLUGINS_LIST_S}",
                           cold <= PLUGINS_LIST_S))
        for key, name in (("import_aid2e", "import aid2e"), ("plugins_list", "aid2e plugins list")):
            heavy = [m for m in r[key]["heavy_imported"] if m in HEAVY]
            out.append(_target(f"{name} imports torch/ax", ", ".join(heavy) or "neither", "neither", not heavy))
    for r in results.get("slurm", []):
        if "skipped" in r:
            out.append(_target("squeue calls per tick", "skipped", "== 1", None, r["skipped"]))
        elif _ok(r):
            out.append(_target("squeue calls per tick", f"{r['squeue_calls']}/{r['status_ticks']}", "== 1",
                               r["squeue_calls"] == r["status_ticks"] and r["completed"] == r["trials"]))
        else:
            out.append(_target("Slurm run", r.get("error", ""), "completes", False))
    for r in results.get("state", []):
        if not _ok(r):
            out.append(_target("state save/load", r.get("error", ""), "runs", False))
            continue
        for key, name in (("load_file", "load_experiment(file)"), ("load_dir", "load_experiment(run dir)")):
            seconds = r[key]["first_s"]
            out.append(_target(f"{name}, {r['trials']} trials (s)", round(seconds, 3), f"<= {STATE_LOAD_S}",
                               seconds <= STATE_LOAD_S if r["trials"] >= 1000 else None,
                               "" if r["trials"] >= 1000 else "target is for 1000 trials"))
    return out


def _f(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _pair(timing: dict[str, float]) -> str:
    return f"{timing['first_s']:.2f} / {timing['best_s']:.2f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(document: dict[str, Any]) -> str:
    """The Markdown report: one table per item, then every target with PASS/MISS."""
    results = document["results"]
    parts = []
    if results.get("side"):
        rows = []
        for r in results["side"]:
            strategy, trials, system = r["label"].split()
            if not _ok(r):
                rows.append([strategy, trials, system, r.get("error", "")[:60], "", "", "", "", ""])
                continue
            rows.append([strategy, trials, system, r["wall_s"], r["ideal_s"], r["ratio_to_ideal"],
                         r["slots_busy"], r["generation_s"], r.get("first_start_s", math.nan)])
        parts.append("Item 1: same work side by side (1 s trials, 8 in flight)\n\n" + _table(
            ["generation", "trials", "system", "wall s", "ideal s", "wall/ideal", "mean slots busy",
             "generation s", "first trial starts after s"], rows))
    if results.get("overhead"):
        rows = [[r["label"], r["wall_s"], r["generation_s"], r["complete_ms_per_trial"], r["overhead_ms_per_trial"],
                 r.get("non_ax_ms_per_trial", math.nan), r["wall_ms_per_trial"], r["peak_rss_mb"]["self"]]
                if _ok(r) else [r["label"], r.get("error")] + [""] * 6 for r in results["overhead"]]
        parts.append("Item 2: scheduler overhead (instant Sobol trials, 8 workers)\n\n" + _table(
            ["run", "wall s", "generation s", "Ax complete_trial ms/trial", "overhead ms/trial",
             "without Ax calls ms/trial", "wall ms/trial", "peak RSS MiB"], rows))
    if results.get("startup"):
        r = results["startup"][0]
        if _ok(r):
            rows = [[name, r[key].get("first_s", math.nan), r[key].get("median_s", math.nan),
                     ", ".join(r[key].get("heavy_imported", [])) or "none"]
                    for key, name in (("python_floor", "python -c pass"), ("import_aid2e", "import aid2e"),
                                      ("plugins_list", "aid2e plugins list"))]
            parts.append("Item 3: start-up (fresh processes)\n\n" + _table(
                ["command", "first run s", "median s", "heavy packages imported"], rows))
    if results.get("slurm"):
        r = results["slurm"][0]
        if _ok(r):
            parts.append("Item 4: real Slurm (script trials)\n\n" + _table(
                ["run", "wall s", "ideal s", "wall/ideal", "mean jobs running", "first job starts after s",
                 "squeue calls", "status ticks"],
                [[r["label"], r["wall_s"], r["ideal_s"], r["ratio_to_ideal"], r["slots_busy"], r["first_start_s"],
                  r["squeue_calls"], r["status_ticks"]]]))
        else:
            parts.append(f"Item 4: real Slurm: {r.get('skipped') or r.get('error')}")
    if results.get("state"):
        r = results["state"][0]
        if _ok(r):
            parts.append("Item 5: state of a large experiment\n\n" + _table(
                ["trials", "save s", "load file s (first/best)", "load run dir s (first/best)", "state file KiB",
                 "trials.json KiB"],
                [[r["trials"], r["save"]["first_s"], _pair(r["load_file"]), _pair(r["load_dir"]),
                  round(r["state_json_kb"]), round(r["run_dir_trials_json_kb"])]]))
    parts.append("Targets\n\n" + _table(["target", "figure", "limit", "result"],
                                        [[t["target"], t["figure"], t["limit"], t["result"]]
                                         for t in document["targets"]]))
    return "\n\n".join(parts)
