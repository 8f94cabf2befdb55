"""Item 2: the scheduler's own cost per trial, from trials that do nothing.

    python bench/overhead.py --trials 1000 --backend threading
    python bench/overhead.py --trials 1000 --backend loky

Runs ``--trials`` quasi-random (Sobol) trials whose objective returns at once on
``JobLibRunner(n_jobs=--jobs, pool=--backend)``. Definitions (all from one run):

* ``wall``: ``run_optimization``'s call to its return;
* ``generation``: time inside Ax generation (``AxBridge.next_trials``: ``GenerationStrategy.gen``
  plus creating the trials), summed over calls;
* ``overhead per trial = (wall - generation) / trials``: everything else the run costs
  per trial — launching, the runner's round trip, reporting to Ax (``complete_trial``, shown
  separately as ``complete``), saving state, progress. If generation overlaps other work (Ax
  in its own thread) this subtraction can hide the overlapped part; ``wall / trials`` is the
  upper bound and is reported too.
* ``non_ax_ms_per_trial``: the same minus Ax's ``complete_trial`` and Ax snapshot time (an
  estimate of aid2e's own share: those Ax calls run on Ax's owner thread while the loop's
  thread works, so where they overlap this subtracts too much);
* ``timers``: a breakdown (seconds, calls) of named aid2e internals where they exist:
  ``save_state`` (includes the trials.json rewrite after each change), ``ax_snapshot`` (Ax's
  snapshot, made on Ax's thread; the main thread writes it), ``best_parameters``, ``end_run``,
  ``launch``, ``poll_and_finish``;
  nested and cross-thread, so they do not add up to the wall time;
* peak memory: ``ru_maxrss`` of this process (and of reaped children: loky workers are killed,
  not reaped, so theirs usually shows as 0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib


def instant(x: float) -> dict[str, float]:
    """The objective: no work at all."""
    return {"objective": x}


def run(args: argparse.Namespace) -> dict[str, Any]:
    benchlib.quiet()
    from aid2e import AxScheduler, JobLibRunner

    timer = benchlib.GenTimer().install(bridge=True)
    # where the rest goes (aid2e internals, timed only if they exist under these names)
    timer.wrap_optional("aid2e.ax_scheduler", "AxScheduler._save_state", "save_state")
    timer.wrap_optional("aid2e.ax_bridge", "AxBridge.snapshot", "ax_snapshot")
    timer.wrap_optional("aid2e.ax_scheduler", "AxScheduler.best_parameters", "best_parameters")
    timer.wrap_optional("aid2e.ax_scheduler", "AxScheduler._end_run", "end_run")
    timer.wrap_optional("aid2e.loop", "TrialLoop.launch", "launch")
    timer.wrap_optional("aid2e.loop", "TrialLoop.poll", "poll_and_finish")
    with tempfile.TemporaryDirectory(prefix="aid2e-bench-") as tmp:
        client = benchlib.make_client("bench_overhead", "sobol")
        runner = JobLibRunner(n_jobs=args.jobs, pool=args.backend)
        scheduler = AxScheduler(client, runner, {"job_output_dir": str(Path(tmp) / "jobs")})
        scheduler.set_objective_function(lambda x: {"objective": x})
        started = time.perf_counter()
        scheduler.run_optimization(max_trials=args.trials)
        wall = time.perf_counter() - started
        completed = sum(r.status == "COMPLETED" for r in scheduler.trials.values())
        trials_json = scheduler.experiment_dir / "trials.json"
        trials_json_kb = trials_json.stat().st_size / 1024 if trials_json.exists() else None
        runner.close()
    generation = timer.seconds["next_trials"]
    completing = timer.seconds["complete"] + timer.seconds.get("complete_many", 0.0)
    return {
        "trials": args.trials,
        "jobs": args.jobs,
        "backend": args.backend,
        "completed": completed,
        "wall_s": wall,
        "generation_s": generation,
        "timers": timer.as_dict(),
        "overhead_ms_per_trial": (wall - generation) / args.trials * 1000,
        "wall_ms_per_trial": wall / args.trials * 1000,
        "generation_ms_per_trial": generation / args.trials * 1000,
        "complete_ms_per_trial": completing / args.trials * 1000,
        # also without Ax's complete_trial and the Ax snapshot (to_json) — aid2e's own share
        "non_ax_ms_per_trial": (wall - generation - completing
                                - timer.seconds.get("ax_snapshot", 0.0)) / args.trials * 1000,
        "trials_json_kb": trials_json_kb,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--backend", choices=("threading", "loky", "multiprocessing"), default="threading")
    p.add_argument("--profile", help="also write a cProfile of the run to this file")
    p.add_argument("--out", help="write the JSON result here (default: print it)")
    return p


if __name__ == "__main__":
    arguments = parser().parse_args()
    if arguments.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run, arguments)
        profiler.dump_stats(arguments.profile)
    else:
        result = run(arguments)
    benchlib.write_result(arguments.out, result)
