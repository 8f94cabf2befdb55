"""Benchmark: N trials of S seconds through the real Slurm with J in flight (SlurmRunner).

    python bench/slurm_trials.py                      # 100 trials x 1 s, 16 in flight
    python bench/slurm_trials.py --trials 40 --jobs 8

Prints the wall time against the ideal (ceil(N/J) x S) and how many squeue calls each status
tick made, counted by a PATH shim in front of the real squeue. Each job script also logs its
own start and end, so the mean number of jobs actually running is measured too. Needs a
running Slurm (scripts/services/slurm.sh) whose node has at least J CPUs; item 4 of
``bench/run.py`` (which skips it, with the reason, when there is no Slurm).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib


def slurm_missing() -> str | None:
    """Why Slurm cannot be used here, or None if ``squeue`` answers."""
    import subprocess

    if shutil.which("squeue") is None or shutil.which("sbatch") is None:
        return "no squeue/sbatch on PATH (start Slurm with scripts/services/slurm.sh)"
    try:
        done = subprocess.run(["squeue", "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"squeue does not answer: {exc}"
    if done.returncode != 0:
        return f"squeue failed: {done.stderr.strip()[:200]}"
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    benchlib.quiet()
    real = shutil.which("squeue")
    if real is None:
        sys.exit("no squeue on PATH: start Slurm with scripts/services/slurm.sh")
    with tempfile.TemporaryDirectory(prefix="aid2e-bench-", dir=args.tmp_dir) as tmp:
        tmp_path = Path(tmp)
        calls = tmp_path / "squeue.calls"
        intervals = tmp_path / "intervals.txt"
        shim = tmp_path / "bin" / "squeue"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
        os.environ["PATH"] = f"{shim.parent}:{os.environ['PATH']}"
        script = tmp_path / "sleeper.sh"
        script.write_text(
            "t0=$(date +%s.%N)\n"
            f"sleep {args.seconds}\n"
            f'echo "$t0 $(date +%s.%N)" >> "{intervals}"\n'
            'x=$(tr -d " \\n" < "$AID2E_PARAMS_FILE" | sed -e \'s/.*"x":\\([-0-9.e]*\\).*/\\1/\')\n'
            'echo "{\\"objective\\": $x}" > "$AID2E_RESULT_FILE"\n'
        )

        from aid2e import AxScheduler, SlurmRunner

        timer = benchlib.GenTimer()  # where the time goes: sbatch per job, one squeue per poll
        timer.wrap_optional("aid2e_psij.runner", "PsijRunner.submit", "submit")
        timer.wrap_optional("aid2e_psij.runner", "PsijRunner.poll", "poll")
        timer.wrap_optional("aid2e_psij.runner", "PsijRunner.result", "result")
        client = benchlib.make_client("bench_slurm", "sobol")
        runner = SlurmRunner(partition=args.partition, time_limit="00:10:00", memory="100M",
                             config={"max_in_flight": args.jobs})
        scheduler = AxScheduler(client, runner, {"job_output_dir": str(tmp_path / "jobs"),
                                                 "monitoring_interval": args.monitoring_interval})
        scheduler.set_script_objective(str(script))
        epoch, started = time.time(), time.perf_counter()
        scheduler.run_optimization(max_trials=args.trials)
        wall = time.perf_counter() - started
        completed = sum(r.status == "COMPLETED" for r in scheduler.trials.values())
        squeue_calls = len(calls.read_text().splitlines()) if calls.exists() else 0
        spans = benchlib.read_intervals(intervals)
    ideal = benchlib.ideal_wall(args.trials, args.jobs, args.seconds)
    ticks = runner.status_calls
    return {
        "trials": args.trials,
        "jobs": args.jobs,
        "seconds": args.seconds,
        "monitoring_interval": args.monitoring_interval,
        "completed": completed,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio_to_ideal": wall / ideal,
        "slots_busy": benchlib.slots_busy(spans, wall),
        "first_start_s": min((a for a, _ in spans), default=float("nan")) - epoch,
        "mean_job_s": sum(b - a for a, b in spans) / len(spans) if spans else float("nan"),
        "squeue_calls": squeue_calls,
        "status_ticks": ticks,
        "squeue_per_tick": squeue_calls / max(ticks, 1),
        "timers": timer.as_dict(),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--jobs", type=int, default=16)
    p.add_argument("--partition", default="debug")
    p.add_argument("--monitoring-interval", type=float, default=2.0)
    p.add_argument("--tmp-dir", default=None, help="parent of the run's directory (must be shared with the nodes)")
    p.add_argument("--out", help="write the JSON result here (default: print a summary)")
    return p


def main() -> None:
    args = parser().parse_args()
    result = run(args)
    if args.out:
        benchlib.write_result(args.out, result)
        return
    print(f"Slurm: {result['completed']}/{args.trials} trials x {args.seconds:g} s, {args.jobs} in flight: "
          f"{result['wall_s']:.1f} s (ideal {result['ideal_s']:.1f} s, {result['ratio_to_ideal']:.2f}x; "
          f"{result['slots_busy']:.1f} jobs running on average)")
    print(f"squeue: {result['squeue_calls']} calls over {result['status_ticks']} status ticks "
          f"({result['squeue_per_tick']:.2f} per tick, for up to {args.jobs} jobs each)")
    if result["completed"] != args.trials:
        sys.exit("not every trial completed")


if __name__ == "__main__":
    main()
