"""aid2e's benchmark suite (issue 6): one command, a table with a PASS/MISS per target, JSON.

    python bench/run.py                     # everything (about 15 minutes on 2 cores)
    python bench/run.py --quick             # a smaller subset (about 2-3 minutes)
    python bench/run.py --only side,startup --json /tmp/results.json

Items (``--only`` names): ``side`` (1: aid2e vs ``Client.run_trials`` vs a hand-tuned Ax
Orchestrator, 1 s trials, 8 in flight), ``overhead`` (2: 1000 instant trials), ``startup``
(3: ``import aid2e`` and ``aid2e plugins list``), ``slurm`` (4: 100 trials of 1 s through the
real Slurm, 16 in flight), ``state`` (5: save and load of a 1000-trial experiment). Every case
runs in its own fresh Python (see :mod:`benchlib`); each figure comes from one run.
The printed tables are Markdown, ready for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import benchlib
from report import render, targets

ITEMS = ("side", "overhead", "startup", "slurm", "state")


def plan(quick: bool) -> dict[str, list[tuple[str, list[str]]]]:
    """Cases per item: ``(label, arguments of the case script)``."""
    side: list[tuple[str, list[str]]] = []
    sizes = (24,) if quick else (24, 96)
    for strategy in ("sobol", "botorch"):
        for trials in sizes:
            systems = ["aid2e", "orchestrator", "client"]
            if quick and strategy == "botorch":
                systems = ["aid2e"]
            for system in systems:
                side.append((f"{strategy} {trials} {system}",
                             ["--system", system, "--strategy", strategy, "--trials", str(trials)]))
            if strategy == "sobol":
                side.append((f"{strategy} {trials} aid2e-threading",
                             ["--system", "aid2e", "--strategy", strategy, "--trials", str(trials),
                              "--backend", "threading"]))
    many = "200" if quick else "1000"
    return {
        "side": [(label, ["side_by_side.py", *a]) for label, a in side],
        "overhead": [(f"{many} instant trials, {b}", ["overhead.py", "--trials", many, "--backend", b])
                     for b in (("threading",) if quick else ("threading", "loky"))],
        "startup": [("import aid2e, aid2e plugins list", ["startup.py", "--repeat", "3" if quick else "5"])],
        "slurm": [("Slurm 32 x 1 s, 16 in flight" if quick else "Slurm 100 x 1 s, 16 in flight",
                   ["slurm_trials.py", "--trials", "32" if quick else "100", "--jobs", "16",
                    "--monitoring-interval", "1.0"])],
        "state": [(f"save/load {many} trials", ["state.py", "--trials", many, "--repeat", "1" if quick else "3"])],
    }


def _summary(item: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"].splitlines()[-1][:120]
    if "skipped" in result:
        return "skipped: " + result["skipped"]
    if item in ("side", "slurm"):
        return (f"wall {result['wall_s']:.2f} s (ideal {result['ideal_s']:.1f} s), "
                f"{result['slots_busy']:.2f} slots busy, completed {result['completed']}")
    if item == "overhead":
        return f"{result['overhead_ms_per_trial']:.2f} ms/trial overhead, wall {result['wall_s']:.2f} s"
    if item == "startup":
        return (f"import {result['import_aid2e'].get('median_s', math.nan):.3f} s, "
                f"plugins list {result['plugins_list'].get('median_s', math.nan):.3f} s")
    if item == "state":
        return (f"save {result['save']['first_s']:.2f} s, load {result['load_file']['first_s']:.2f} s, "
                f"load dir {result['load_dir']['first_s']:.2f} s")
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller subset (about 2-3 minutes)")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated items: {', '.join(ITEMS)}")
    parser.add_argument("--json", default=str(benchlib.BENCH_DIR / "results.json"), help="where to write the JSON")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ITEMS))
    if unknown:
        parser.error(f"unknown item(s) {', '.join(unknown)}; choose from {', '.join(ITEMS)}")

    machine = benchlib.machine_info()
    print(f"aid2e benchmark on {machine['cpu_count']} x {machine['cpu_model']}, {machine['memory_gb']} GB, "
          f"load {machine['load_average']}; Python {machine['python']}, Ax {machine['ax_platform']}, "
          f"torch {machine['torch']}", flush=True)
    cases = plan(args.quick)
    todo = [(item, label, argv) for item in ITEMS if item in chosen for label, argv in cases[item]]
    results: dict[str, list[dict[str, Any]]] = {item: [] for item in chosen}
    started = time.perf_counter()
    for number, (item, label, argv) in enumerate(todo, 1):
        print(f"[{number}/{len(todo)}] {item}: {label} ...", end=" ", flush=True)
        case_started = time.perf_counter()
        if item == "slurm":
            from slurm_trials import slurm_missing

            reason = slurm_missing()
            result = {"skipped": reason} if reason else benchlib.run_case(argv[0], argv[1:])
        else:
            result = benchlib.run_case(argv[0], argv[1:])
        result["label"] = label
        results[item].append(result)
        print(f"{_summary(item, result)} [{time.perf_counter() - case_started:.0f} s]", flush=True)

    document = {
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "mode": "quick" if args.quick else "full",
        "machine": machine,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "duration_s": round(time.perf_counter() - started, 1),
        "results": results,
    }
    document["targets"] = targets(results)
    print()
    print(render(document))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=str))
    print(f"\nJSON: {path}  (took {document['duration_s']:.0f} s)")


if __name__ == "__main__":
    main()
