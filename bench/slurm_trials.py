"""Benchmark: N trials of S seconds through the real Slurm with J in flight (SlurmRunner).

    python bench/slurm_trials.py                      # 100 trials x 1 s, 16 in flight
    python bench/slurm_trials.py --trials 40 --jobs 8

Prints the wall time against the ideal (ceil(N/J) x S) and how many squeue calls each status
tick made, counted by a PATH shim in front of the real squeue. Needs a running Slurm
(scripts/services/slurm.sh) whose node has at least J CPUs.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from aid2e.testing.experiments import sobol_generation_strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--partition", default="debug")
    parser.add_argument("--monitoring-interval", type=float, default=2.0)
    args = parser.parse_args()
    real = shutil.which("squeue")
    if real is None:
        sys.exit("no squeue on PATH: start Slurm with scripts/services/slurm.sh")
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        calls = tmp_path / "squeue.calls"
        shim = tmp_path / "bin" / "squeue"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
        os.environ["PATH"] = f"{shim.parent}:{os.environ['PATH']}"
        script = tmp_path / "sleeper.sh"
        script.write_text(
            f"sleep {args.seconds}\n"
            'x=$(tr -d " \\n" < "$AID2E_PARAMS_FILE" | sed -e \'s/.*"x":\\([-0-9.e]*\\).*/\\1/\')\n'
            'echo "{\\"objective\\": $x}" > "$AID2E_RESULT_FILE"\n'
        )

        from ax import Client, RangeParameterConfig

        from aid2e import AxScheduler, SlurmRunner

        client = Client(random_seed=0)
        client.configure_experiment(name="bench_slurm", parameters=[
            RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0))])
        client.configure_optimization(objective="-objective")
        client.set_generation_strategy(sobol_generation_strategy())
        runner = SlurmRunner(partition=args.partition, time_limit="00:10:00", memory="100M",
                             config={"max_in_flight": args.jobs})
        scheduler = AxScheduler(client, runner, {"job_output_dir": str(tmp_path / "jobs"),
                                                 "monitoring_interval": args.monitoring_interval})
        scheduler.set_script_objective(str(script))
        started = time.perf_counter()
        scheduler.run_optimization(max_trials=args.trials)
        elapsed = time.perf_counter() - started
        completed = sum(r.status == "COMPLETED" for r in scheduler.trials.values())
        squeue_calls = len(calls.read_text().splitlines()) if calls.exists() else 0

    ideal = math.ceil(args.trials / args.jobs) * args.seconds
    print(f"Slurm: {completed}/{args.trials} trials x {args.seconds:g} s, {args.jobs} in flight: "
          f"{elapsed:.1f} s (ideal {ideal:.1f} s, {elapsed / ideal:.2f}x)")
    print(f"squeue: {squeue_calls} calls over {runner.status_calls} status ticks "
          f"({squeue_calls / max(runner.status_calls, 1):.2f} per tick, for up to {args.jobs} jobs each)")
    if completed != args.trials:
        sys.exit("not every trial completed")


if __name__ == "__main__":
    main()
