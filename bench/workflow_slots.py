"""Benchmark: trials made of stages keep every slot busy? 20 trials x 8 jobs of 1 s on 16 slots.

    python bench/workflow_slots.py                # function jobs on 16 threads
    python bench/workflow_slots.py --script       # script jobs (a process each) on 16 slots
    python bench/workflow_slots.py --trials 40 --fan-out 8 --slots 16 --seconds 1

Each trial is a workflow: a stage fanned out into ``--fan-out`` jobs that each sleep ``--seconds``,
then a merge stage (one short job). Each sleeping job records when it started and ended; from
those the benchmark prints:

* jobs in flight against capacity: the mean number of jobs aid2e holds on the backend (from each
  job's submission to the moment its end is collected, as its record says) over the run, against
  the capacity (the goal is >= 90%);
* busy slots as the payload sees them: the mean number of jobs sleeping (timed inside each job, so
  a script's own interpreter start-up is not counted) and the longest time one slot stayed free;
* scheduler overhead per job: slot-seconds not spent sleeping, per job (interpreter start-ups, the
  merges, and the gaps between a job's end and the next start), and the controller's CPU time per job.

Generation is quasi-random (Sobol), so the figures measure scheduling, not model fitting.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

SPANS: list[tuple[float, float]] = []
LOCK = threading.Lock()


def work(x: float, y: float, part: int, seconds: float) -> dict:
    started = time.time()
    time.sleep(seconds)
    with LOCK:
        SPANS.append((started, time.time()))
    return {"part": part}


def merge(x: float, y: float, inputs: dict) -> dict:
    return {"objective": (x - 0.3) ** 2 + y, "jobs": len(inputs["work"])}


SCRIPT = """\
import json, os, sys, time
started = time.time()
time.sleep(float(sys.argv[1]))
json.dump({"span": [started, time.time()]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def busy_profile(spans: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(mean jobs in flight, makespan, longest stretch with fewer jobs than the peak) over ``spans``."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    first, last = events[0][0], events[-1][0]
    area, level, previous = 0.0, 0, first
    peak = 0
    for when, step in events:
        area += level * (when - previous)
        level += step
        peak = max(peak, level)
        previous = when
    # the longest stretch (inside the run) with a free slot below the peak
    level, previous, gap, longest = 0, first, None, 0.0
    for when, step in events:
        level += step
        if level < peak and gap is None and first < when < last:
            gap = when
        elif level >= peak and gap is not None:
            longest, gap = max(longest, when - gap), None
    return area / (last - first), last - first, longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fan-out", type=int, default=8)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--script", action="store_true", help="script jobs (one process each) instead of functions")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from aid2e import AxScheduler, JobLibRunner, Stage, Workflow
    from aid2e.testing.experiments import unit_square_ax_client

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runner = JobLibRunner(n_jobs=args.slots, pool="threading")
        scheduler = AxScheduler(unit_square_ax_client("bench_workflow"), runner, {"job_output_dir": str(workdir)})
        parts = {"part": list(range(args.fan_out))}
        if args.script:
            script = workdir / "sleep.py"
            script.write_text(SCRIPT)
            stage = Stage("work", script=[sys.executable, str(script), str(args.seconds)], fan_out=parts)
        else:
            seconds = args.seconds
            stage = Stage("work", function=lambda x, y, part: work(x, y, part, seconds), fan_out=parts)
        scheduler.set_workflow(Workflow([stage, Stage("merge", function=merge)]))
        cpu, started = time.process_time(), time.perf_counter()
        scheduler.run_optimization(max_trials=args.trials)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        runner.close()
        spans = SPANS if not args.script else [
            tuple(job.output["span"]) for record in scheduler.trials.values() for job in record.jobs.values()
            if job.stage == "work"]
        held = [(job.started_at, job.ended_at) for record in scheduler.trials.values()
                for job in record.jobs.values()]
        failed = [r.message for r in scheduler.trials.values() if r.status != "COMPLETED"]
    if failed:
        print(f"{len(failed)} trials did not complete: {failed[0]}", file=sys.stderr)
        return 1
    jobs = args.trials * args.fan_out
    mean, makespan, longest = busy_profile(spans)
    in_flight, span_held, _ = busy_profile(held)
    ideal = jobs * args.seconds / args.slots
    kind = "script jobs (a process each)" if args.script else "function jobs (threads)"
    print(f"{args.trials} trials x {args.fan_out} jobs of {args.seconds:g} s on {args.slots} slots, {kind}")
    print(f"  jobs in flight: mean {in_flight:.2f} of {args.slots} ({100 * in_flight / args.slots:.1f}% of capacity, "
          f"goal >= 90%) over {span_held:.2f} s (ideal {ideal:.2f} s)")
    print(f"  busy slots (payload sleeping): mean {mean:.2f} ({100 * mean / args.slots:.1f}%) over {makespan:.2f} s; "
          f"longest stretch with a free slot {longest * 1000:.0f} ms")
    print(f"  scheduler overhead per job: {1000 * (args.slots * makespan - jobs * args.seconds) / jobs:.1f} "
          f"slot-ms not sleeping (merges and gaps); controller CPU {1000 * cpu / (jobs + args.trials):.2f} ms "
          f"per job; wall {wall:.2f} s from run_optimization's call to its return")
    print(json.dumps({"in_flight_fraction": in_flight / args.slots, "busy_fraction": mean / args.slots,
                      "makespan": makespan, "ideal": ideal, "wall": wall,
                      "cpu_per_job_ms": 1000 * cpu / (jobs + args.trials)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
