"""The calorimeter optimisation with every trial a Slurm job (the seed's SlurmRunner example).

    python examples/slurm_optimization.py [--partition debug] [--trials 8]

Needs a Slurm cluster (scripts/services/slurm.sh starts a single-node one as root) and a file
system shared with its nodes. The function objective is pickled into each trial directory and
run by the batch job with this interpreter; the script objective shows the same campaign with a
program instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from calorimeter_model import energy_resolution  # noqa: E402


def objective_function(parameterization: dict) -> dict:
    return {"resolution": energy_resolution(parameterization["absorber_mm"], parameterization["scintillator_mm"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default="debug")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--script", action="store_true", help="use calorimeter_script.py as the objective")
    parser.add_argument("--output", default="./aid2e_jobs")
    args = parser.parse_args()

    from ax import Client, RangeParameterConfig

    from aid2e import AxScheduler, SlurmRunner

    client = Client(random_seed=11)
    client.configure_experiment(
        name=f"calorimeter_slurm_{int(time.time())}",
        parameters=[RangeParameterConfig(name="absorber_mm", parameter_type="float", bounds=(1.0, 10.0)),
                    RangeParameterConfig(name="scintillator_mm", parameter_type="float", bounds=(1.0, 10.0))],
    )
    client.configure_optimization(objective="-resolution")

    runner = SlurmRunner(
        partition=args.partition,
        time_limit="00:10:00",
        memory="1G",
        cpus_per_task=1,
        config={"sbatch_options": {"comment": "aid2e calorimeter example"}, "max_in_flight": 4},
    )
    scheduler = AxScheduler(client, runner, {"job_output_dir": args.output, "monitoring_interval": 2})
    if args.script:
        scheduler.set_script_objective(str(HERE / "calorimeter_script.py"))
    else:
        scheduler.set_objective_function(objective_function)
    started = time.perf_counter()
    best = scheduler.run_optimization(max_trials=args.trials)
    jobs = ", ".join(r.handle.native_id for r in scheduler.trials.values() if r.handle)
    print(f"{args.trials} trials as Slurm jobs {jobs} in {time.perf_counter() - started:.1f} s")
    print(f"best: absorber {best['absorber_mm']:.2f} mm, scintillator {best['scintillator_mm']:.2f} mm -> "
          f"sigma_E/E = {100 * energy_resolution(best['absorber_mm'], best['scintillator_mm']):.2f}%")


if __name__ == "__main__":
    main()
