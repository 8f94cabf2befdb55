"""Item 5: saving and loading a large experiment's state.

    python bench/state.py --trials 1000

Builds an experiment of ``--trials`` completed quasi-random trials (trivial objective,
``JobLibRunner(pool="threading")``), then times, each in this process:

* ``save``: ``scheduler.save_experiment(file)`` (Ax snapshot + trial records, one JSON file);
* ``load_file``: ``AxScheduler(None, runner).load_experiment(file)``;
* ``load_dir``: ``load_experiment(<job_output_dir>/<name>/)``, the run directory the scheduler
  saved by itself (its ``experiment.json`` snapshot plus ``trials.json`` replayed onto it);

and reports the files' sizes and where save and load spend their time (Ax's own JSON
encoding/decoding against aid2e's reading and replay of trial records). ``--repeat`` repeats
each timing and keeps the fastest and the first (the first pays for imports and caches inside
Ax's decoder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib


def _timed(function: Any, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return {"first_s": times[0], "best_s": min(times)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    benchlib.quiet()
    from aid2e import AxScheduler, JobLibRunner

    with tempfile.TemporaryDirectory(prefix="aid2e-bench-") as tmp:
        tmp_path = Path(tmp)
        runner = JobLibRunner(n_jobs=8, pool="threading")
        scheduler = AxScheduler(benchlib.make_client("bench_state", "sobol"), runner,
                                {"job_output_dir": str(tmp_path / "jobs")})
        scheduler.set_objective_function(lambda x: {"objective": x})
        started = time.perf_counter()
        scheduler.run_optimization(max_trials=args.trials)
        build = time.perf_counter() - started
        completed = sum(r.status == "COMPLETED" for r in scheduler.trials.values())
        path = tmp_path / "state.json"
        run_dir = scheduler.experiment_dir

        timer = benchlib.GenTimer()
        timer.wrap_optional("aid2e.ax_bridge", "AxBridge.from_snapshot", "ax_from_snapshot")
        timer.wrap_optional("aid2e.ax_bridge", "AxBridge.snapshot", "ax_snapshot")
        timer.wrap_optional("aid2e.ax_bridge", "AxBridge.sync_trial", "sync_trial")
        timer.wrap_optional("aid2e.state_records", "_read", "read_json")
        save = _timed(lambda: scheduler.save_experiment(str(path)), args.repeat)
        loaded: dict[str, Any] = {}

        def load(source: Path) -> None:
            other = AxScheduler(None, runner)
            other.load_experiment(str(source))
            loaded["trials"] = len(other.trials)
            loaded["ax_trials"] = len(other.experiment.trials)

        load_file = _timed(lambda: load(path), args.repeat)
        file_trials = dict(loaded)
        load_timers = timer.as_dict()
        load_dir = _timed(lambda: load(run_dir), args.repeat)
        sizes = {
            "state_json_kb": path.stat().st_size / 1024,
            "run_dir_experiment_json_kb": (run_dir / "experiment.json").stat().st_size / 1024,
            "run_dir_trials_json_kb": (run_dir / "trials.json").stat().st_size / 1024,
        }
        runner.close()
    return {
        "trials": args.trials,
        "completed": completed,
        "build_s": build,
        "save": save,
        "load_file": load_file,
        "load_dir": load_dir,
        "loaded_trials": file_trials,
        # cumulative over the save and load_file repeats (ax_from_snapshot: Ax's JSON decoding)
        "timers_save_and_load_file": load_timers,
        "loaded_trials_dir": loaded,
        **sizes,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", help="write the JSON result here (default: print it)")
    return p


if __name__ == "__main__":
    arguments = parser().parse_args()
    benchlib.write_result(arguments.out, run(arguments))
