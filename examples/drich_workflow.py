"""A dRICH-shaped campaign on local cores: trials made of stages, with toy physics.

    python examples/drich_workflow.py [--trials N] [--jobs N] [--events N] [--output DIR]

Each trial, as the dRICH group's campaigns run (examples/drich/ holds the stages' files):

1. ``geometry``: writes the trial's copy of the compact file with its aerogel thickness and
   mirror focus (aid2e.geometry.CompactGeometry);
2. ``overlaps``: a script that exits 9 when the aerogel does not fit: the trial then completes
   with the penalty values (exit_codes={9: "penalty"}) instead of teaching the model nothing;
3. ``simulate``: 4 jobs, pi+ and kaon+ at 10 and 20 GeV (fan-out), each a script writing the
   events' mean Cherenkov angle and spread;
4. ``separation``: one function that gets every simulation's output and gives two objectives,
   the pi/K separation in standard deviations at 10 and 20 GeV, each with its standard error.

``examples/drich_workflow_slurm.py`` runs the simulations as Slurm jobs instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "drich"))

from drich_stages import COMPACT, MOMENTA, PENALTY, analyze, separation  # noqa: E402, F401  (the stages' code)


def build_workflow(events: int, simulate_on: Any = None) -> Any:
    """The trial's stages; ``simulate_on`` runs the simulations (None: the scheduler's runner)."""
    from aid2e import Stage, Workflow

    python = sys.executable
    return Workflow([
        Stage("geometry", function=COMPACT),
        Stage("overlaps", script=[python, str(HERE / "drich" / "check_overlaps.py")], exit_codes={9: "penalty"}),
        Stage("simulate", script=[python, str(HERE / "drich" / "simulate.py"), "{particle}", "{momentum}", str(events)],
              fan_out={"particle": ["pi+", "kaon+"], "momentum": list(MOMENTA)}, backend=simulate_on,
              resources={"cpus": 1, "memory": "1G", "walltime": "00:10:00"}),
        Stage("separation", function=analyze),
    ])


def make_experiment(name: str) -> Any:
    from ax.service.ax_client import AxClient, ObjectiveProperties

    ax_client = AxClient(verbose_logging=False, random_seed=11)
    ax_client.create_experiment(
        name=name,
        parameters=[
            {"name": "aerogel_thickness", "type": "range", "bounds": [1.0, 6.0], "value_type": "float"},
            {"name": "mirror_focus", "type": "range", "bounds": [-5.0, 5.0], "value_type": "float"},
        ],
        objectives={"piK_sep_10": ObjectiveProperties(minimize=False, threshold=3.0),
                    "piK_sep_20": ObjectiveProperties(minimize=False, threshold=1.0)},
    )
    return ax_client


def run(args: argparse.Namespace, simulate_on: Any = None, name: str = "drich") -> Any:
    from aid2e import AxScheduler, JobLibRunner

    runner = JobLibRunner(n_jobs=args.jobs)
    scheduler = AxScheduler(make_experiment(f"{name}_{int(time.time())}"), runner, {
        "job_output_dir": args.output, "monitoring_interval": 2, "max_parallel_trials": 3, "penalty": PENALTY})
    scheduler.set_workflow(build_workflow(args.events, simulate_on))
    pareto = scheduler.run_optimization(max_trials=args.trials)
    runner.close()
    counts = {s: sum(r.status == s for r in scheduler.trials.values()) for s in ("COMPLETED", "FAILED")}
    penalized = sum(r.penalized for r in scheduler.trials.values())
    print(f"{args.trials} trials ({counts['COMPLETED']} completed, {penalized} of them penalized for overlaps, "
          f"{counts['FAILED']} failed) in {scheduler.experiment_dir}")
    for index, parameters in sorted((pareto or {}).items()):
        metrics = scheduler.trials[index].metrics
        print(f"  Pareto trial {index}: aerogel {parameters['aerogel_thickness']:.2f} cm, mirror focus "
              f"{parameters['mirror_focus']:+.2f} cm -> " + ", ".join(
                  f"{m} {v.mean:.2f} +- {v.sem:.2f}" for m, v in sorted(metrics.items())))
    return scheduler


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--output", default="./aid2e_jobs")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse())
