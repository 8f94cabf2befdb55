"""Item 1: the same sleeping trials through aid2e, Ax's ``Client.run_trials`` and a hand-tuned
Ax Orchestrator.

    python bench/side_by_side.py --system aid2e --trials 24 --strategy sobol
    python bench/side_by_side.py --system client --trials 24 --strategy botorch
    python bench/side_by_side.py --system orchestrator --trials 96 --strategy sobol

Each trial sleeps ``--seconds`` and logs its own start and end, so "slots busy" is measured
from the trials themselves, the same way for every system. Wall time runs from the call that
starts the loop (``run_optimization``, ``run_trials``, ``run_n_trials``) to its return.
Generation time is the sum of ``GenerationStrategy.gen`` calls (a runtime shim, see
:class:`benchlib.GenTimer`). The Ax systems run the sleeps on a thread pool of ``--jobs``
workers through an ``IRunner``/``IMetric`` pair; aid2e runs them on ``JobLibRunner(n_jobs)``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import benchlib

SYSTEMS = ("aid2e", "client", "orchestrator")


def run_aid2e(args: argparse.Namespace, workdir: Path, log_path: str) -> dict[str, Any]:
    """AxScheduler + JobLibRunner(n_jobs=jobs, pool=backend)."""
    from aid2e import AxScheduler, JobLibRunner

    timer = benchlib.GenTimer().install(bridge=True)
    client = benchlib.make_client("bench_aid2e", args.strategy)
    setup_started = time.perf_counter()
    runner = JobLibRunner(n_jobs=args.jobs, pool=args.backend)
    scheduler = AxScheduler(client, runner, {"job_output_dir": str(workdir)})
    scheduler.set_objective_function(benchlib.timed_sleeper(log_path, args.seconds))
    setup = time.perf_counter() - setup_started
    epoch, started = time.time(), time.perf_counter()
    scheduler.run_optimization(max_trials=args.trials)
    wall = time.perf_counter() - started
    records = list(scheduler.trials.values())
    runner.close()
    recorded = [(r.started_at, r.ended_at) for r in records if r.ended_at is not None]
    return {
        "wall_s": wall,
        "epoch": epoch,
        "setup_s": round(setup, 3),
        "completed": sum(r.status == "COMPLETED" for r in records),
        "generation_s": timer.seconds["gen"],
        "timers": timer.as_dict(),
        "slots_busy_by_records": benchlib.slots_busy(recorded, wall),
        "backend": args.backend,
    }


def ax_runner_and_metric(pool: ThreadPoolExecutor, objective: Any) -> tuple[Any, Any]:
    """An IRunner/IMetric pair for Ax's own loops that runs ``objective(x)`` on ``pool``."""
    from ax.api.protocols.metric import IMetric
    from ax.api.protocols.runner import IRunner, TrialStatus

    futures: dict[int, Any] = {}

    class SleepRunner(IRunner):
        def run_trial(self, trial_index, parameterization):
            futures[trial_index] = pool.submit(objective, parameterization["x"])
            return {}

        def poll_trial(self, trial_index, trial_metadata):
            return TrialStatus.COMPLETED if futures[trial_index].done() else TrialStatus.RUNNING

        def stop_trial(self, trial_index, trial_metadata):
            return {}

    class SleepMetric(IMetric):
        def fetch(self, trial_index, trial_metadata):
            return 0, futures[trial_index].result()["objective"]

    return SleepRunner(), SleepMetric(name="objective")


def run_ax(args: argparse.Namespace, log_path: str) -> dict[str, Any]:
    """Ax's own loop: ``Client.run_trials`` (as shipped) or an Orchestrator tuned by hand."""
    from ax.core.base_trial import TrialStatus as CoreStatus

    timer = benchlib.GenTimer().install(bridge=False)
    client = benchlib.make_client(f"bench_{args.system}", args.strategy)
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    runner, metric = ax_runner_and_metric(pool, benchlib.timed_sleeper(log_path, args.seconds))
    client.configure_runner(runner)
    client.configure_metrics([metric])
    if args.system == "client":
        epoch, started = time.time(), time.perf_counter()
        client.run_trials(max_trials=args.trials, parallelism=args.jobs)
        wall = time.perf_counter() - started
        options = {"min_seconds_before_poll": 1.0, "init_seconds_between_polls": 1}
    else:
        from ax.orchestration.orchestrator import Orchestrator
        from ax.orchestration.orchestrator_options import OrchestratorOptions

        options = {
            "min_seconds_before_poll": 0.0,  # Client.run_trials: 1 s before each launch's first poll
            "init_seconds_between_polls": 0.05,  # Client.run_trials: 1 s, growing x1.5
            "seconds_between_polls_backoff_factor": 1.0,
        }
        orchestrator = Orchestrator(
            experiment=client._experiment,
            generation_strategy=client._generation_strategy_or_choose(),
            options=OrchestratorOptions(max_pending_trials=args.jobs, logging_level=logging.WARNING, **options),
        )
        epoch, started = time.time(), time.perf_counter()
        orchestrator.run_n_trials(max_trials=args.trials)
        wall = time.perf_counter() - started
    pool.shutdown(wait=True)
    trials = client._experiment.trials.values()
    return {
        "wall_s": wall,
        "epoch": epoch,
        "completed": sum(t.status == CoreStatus.COMPLETED for t in trials),
        "generation_s": timer.seconds["gen"],
        "timers": timer.as_dict(),
        "options": options,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    benchlib.quiet()
    with tempfile.TemporaryDirectory(prefix="aid2e-bench-") as tmp:
        log_path = str(Path(tmp) / "intervals.txt")
        if args.system == "aid2e":
            result = run_aid2e(args, Path(tmp) / "jobs", log_path)
        else:
            result = run_ax(args, log_path)
        intervals = benchlib.read_intervals(log_path)
    wall = result["wall_s"]
    ideal = benchlib.ideal_wall(args.trials, args.jobs, args.seconds)
    return {
        "system": args.system,
        "strategy": args.strategy,
        "trials": args.trials,
        "jobs": args.jobs,
        "seconds": args.seconds,
        **result,
        "ideal_s": ideal,
        "ratio_to_ideal": wall / ideal,
        "slots_busy": benchlib.slots_busy(intervals, wall),
        "trials_timed": len(intervals),
        # from the loop's start to the first trial's own start (workers starting, first generation)
        "first_start_s": min((a for a, _ in intervals), default=float("nan")) - result["epoch"],
        # from the last trial's own end to the loop's return
        "tail_s": result["epoch"] + wall - max((b for _, b in intervals), default=float("nan")),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=SYSTEMS, default="aid2e")
    p.add_argument("--strategy", choices=("sobol", "botorch"), default="sobol")
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--backend", default="loky", help="JobLibRunner pool (aid2e only)")
    p.add_argument("--out", help="write the JSON result here (default: print it)")
    return p


if __name__ == "__main__":
    arguments = parser().parse_args()
    benchlib.write_result(arguments.out, run(arguments))
