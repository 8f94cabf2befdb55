"""Two objectives, hand-picked batch trials, a script objective, and save/load — with ax.Client.

    python examples/enhanced_detector_optimization.py [--trials N] [--jobs N]

Trades the calorimeter's energy resolution against its depth (space inside the solenoid is
precious). Each trial runs calorimeter_script.py as its own process on local cores. Halfway
the campaign is saved, loaded into a new scheduler (as a controller restarted by a batch
chain would) and continued.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--output", default="./aid2e_jobs")
    args = parser.parse_args()

    from ax import Client, RangeParameterConfig

    from aid2e import AxScheduler, JobLibRunner

    client = Client(random_seed=7)
    client.configure_experiment(
        name=f"calorimeter_pareto_{int(time.time())}",
        parameters=[
            RangeParameterConfig(name="absorber_mm", parameter_type="float", bounds=(1.0, 10.0)),
            RangeParameterConfig(name="scintillator_mm", parameter_type="float", bounds=(1.0, 10.0)),
        ],
    )
    client.configure_optimization(objective="-resolution, -depth_mm")

    runner = JobLibRunner(n_jobs=args.jobs)
    config = {"job_output_dir": args.output, "monitoring_interval": 5}
    scheduler = AxScheduler(client, runner, config)
    scheduler.set_script_objective(str(HERE / "calorimeter_script.py"))

    # Designs the group already has in mind run first, in parallel.
    with scheduler.batch_trial_context() as batch:
        batch.add_trial({"absorber_mm": 3.0, "scintillator_mm": 3.0})
        batch.add_trial({"absorber_mm": 5.0, "scintillator_mm": 5.0})
        batch.add_trial({"absorber_mm": 9.5, "scintillator_mm": 9.9})  # too thick: the script fails it
    for index, record in batch.results.items():
        print(f"batch trial {index}: {record.status} {record.message.splitlines()[0] if record.message else ''}")

    first = args.trials // 2
    scheduler.run_optimization(max_trials=first)

    saved = Path(tempfile.mkdtemp()) / "campaign.json"
    scheduler.save_experiment(str(saved))
    print(f"saved {len(scheduler.trials)} trials to {saved}")

    resumed = AxScheduler(None, runner, config)
    resumed.load_experiment(str(saved))
    resumed.set_script_objective(str(HERE / "calorimeter_script.py"))
    pareto = resumed.run_optimization(max_trials=args.trials - first)

    print(f"Pareto front after {len(resumed.trials)} trials:")
    for index, params in sorted(pareto.items(), key=lambda kv: resumed.trials[kv[0]].metrics["depth_mm"].mean):
        metrics = resumed.trials[index].metrics
        print(
            f"  trial {index:2d}: absorber {params['absorber_mm']:.2f} mm, scintillator "
            f"{params['scintillator_mm']:.2f} mm -> sigma_E/E {100 * metrics['resolution'].mean:.2f}%, "
            f"depth {metrics['depth_mm'].mean:.0f} mm"
        )
    runner.close()


if __name__ == "__main__":
    sys.exit(main())
