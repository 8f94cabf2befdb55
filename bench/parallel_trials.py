"""Benchmark: N trials that each sleep S seconds on JobLibRunner(n_jobs=J) — how close to ideal?

    python bench/parallel_trials.py                 # 24 trials x 1 s, 8 workers (ideal 3.0 s)
    python bench/parallel_trials.py --baseline      # also Ax's own loop (Client.run_trials) on the same work
    python bench/parallel_trials.py --script        # trials as script jobs (one process each)

A quick single comparison; the full suite (side by side with Ax's loop and a hand-tuned Ax
Orchestrator, BoTorch, overhead, start-up, Slurm, state) is ``python bench/run.py``.

Prints wall time from run_optimization's call to its return, including starting the workers.
Generation is quasi-random (Sobol) so the figure measures scheduling, not model fitting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

from aid2e.testing.experiments import sobol_generation_strategy


def sleeper(x: float, seconds: float = 1.0) -> dict:
    time.sleep(seconds)
    return {"objective": (x - 0.3) ** 2}


def make_client(name: str):
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=0)
    client.configure_experiment(name=name, parameters=[
        RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0))])
    client.configure_optimization(objective="-objective")
    client.set_generation_strategy(sobol_generation_strategy())
    return client


def run_aid2e(args: argparse.Namespace, workdir: Path) -> float:
    from aid2e import AxScheduler, JobLibRunner

    runner = JobLibRunner(n_jobs=args.jobs)
    scheduler = AxScheduler(make_client("bench_aid2e"), runner, {"job_output_dir": str(workdir)})
    if args.script:
        script = workdir / "sleeper.py"
        script.write_text(
            "import json, os, time\n"
            "p = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
            f"time.sleep({args.seconds})\n"
            "json.dump({'objective': (p['x'] - 0.3) ** 2}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n"
        )
        scheduler.set_script_objective(str(script))
    else:
        seconds = args.seconds
        scheduler.set_objective_function(lambda x: sleeper(x, seconds))
    started = time.perf_counter()
    scheduler.run_optimization(max_trials=args.trials)
    elapsed = time.perf_counter() - started
    completed = sum(r.status == "COMPLETED" for r in scheduler.trials.values())
    runner.close()
    if completed != args.trials:
        sys.exit(f"only {completed} of {args.trials} trials completed")
    return elapsed


def run_ax_baseline(args: argparse.Namespace) -> float:
    """Ax's own loop: Client.run_trials with an IRunner/IMetric pair running the same sleeps in threads."""
    from concurrent.futures import ThreadPoolExecutor

    from side_by_side import ax_runner_and_metric

    seconds = args.seconds
    runner, metric = ax_runner_and_metric(ThreadPoolExecutor(max_workers=args.jobs),
                                          lambda x: sleeper(x, seconds))
    client = make_client("bench_ax")
    client.configure_runner(runner)
    client.configure_metrics([metric])
    started = time.perf_counter()
    client.run_trials(max_trials=args.trials, parallelism=args.jobs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--script", action="store_true", help="script jobs instead of a function")
    parser.add_argument("--baseline", action="store_true", help="also time Ax's own loop")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.INFO)
    ideal = -(-args.trials // args.jobs) * args.seconds
    kind = "script" if args.script else "function"
    with tempfile.TemporaryDirectory() as tmp:
        elapsed = run_aid2e(args, Path(tmp))
    print(f"aid2e:  {args.trials} {kind} trials x {args.seconds:g} s on JobLibRunner(n_jobs={args.jobs}): "
          f"{elapsed:.2f} s (ideal {ideal:.1f} s, serial {args.trials * args.seconds:.0f} s)")
    if args.baseline:
        baseline = run_ax_baseline(args)
        print(f"Ax loop: Client.run_trials(parallelism={args.jobs}) on the same work: {baseline:.2f} s")


if __name__ == "__main__":
    main()
