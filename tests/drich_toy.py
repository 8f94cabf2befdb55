"""A dRICH-shaped toy workflow for the workflow tests: imported by them, and run as a controller
script by the kill-and-resume test (not collected by pytest)::

    python drich_toy.py start|resume CAMPAIGN_ROOT TOTAL SIMULATE_ON   # SIMULATE_ON: joblib | slurm:<partition>

Per trial, as the dRICH group's campaigns (toy physics, exact values):

* ``geometry`` (script): writes ``geometry.txt``; exits 9 (overlapping volumes) when x > 0.8;
* ``simulate`` (script, fan-out particle x eta = 4 jobs): reads the geometry stage's file through
  its job file and writes ``hits.txt`` and the output ``{"value": x*eta + k*y}`` (k: 1 for pi+,
  2 for kaon+);
* ``reconstruct`` (script, one per simulate job): reads its simulation's ``hits.txt``, outputs
  ``{"reco": 2*value + 0.5}``;
* ``analyze`` (function, fan-in): two objectives with errors, ``sep`` as ``(mean, sem)`` over
  the pi+ jobs and ``acc`` in AID2E's ``acc``/``acc_err`` convention over the kaon+ jobs.

Every job appends ``<trial> <stage> <job> <pid>`` to the runs log given in its argv, so a test
counts how often each job ran.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

PARTICLES = ("pi+", "kaon+")
ETAS = (1.5, 2.5)
K = {"pi+": 1.0, "kaon+": 2.0}

GEOMETRY = """\
import json, os, sys
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
with open(sys.argv[1], "a") as log:
    log.write(f"{job['trial']} {job['stage']} {job['job']} {os.getpid()}\\n")
open("geometry.txt", "w").write(repr(p["x"]))
sys.exit(9 if p["x"] > 0.8 else 0)
"""

SIMULATE = """\
import json, os, sys, time
particle, eta, runs, pause = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
assert job["fan_out"] == {"particle": particle, "eta": eta}, job["fan_out"]
with open(runs, "a") as log:
    log.write(f"{job['trial']} {job['stage']} {job['job']} {os.getpid()}\\n")
geometry = job["inputs"]["geometry"][0]
x = float(open(os.path.join(geometry["dir"], "geometry.txt")).read())
time.sleep(pause)
value = x * eta + {"pi+": 1.0, "kaon+": 2.0}[particle] * p["y"]
open("hits.txt", "w").write(repr(value))
json.dump({"value": value}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""

RECONSTRUCT = """\
import json, os, sys
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
with open(sys.argv[1], "a") as log:
    log.write(f"{job['trial']} {job['stage']} {job['job']} {os.getpid()}\\n")
(simulation,) = job["inputs"]["simulate"]
assert simulation["fan_out"] == job["fan_out"]
value = float(open(os.path.join(simulation["dir"], "hits.txt")).read())
assert value == simulation["result"]["value"]
json.dump({"reco": 2 * value + 0.5}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


#: The simulation as busybox awk, for a container stage (the test image has no Python): the same
#: value from params.json and the fan-out values given as awk variables; 17 digits, so exact.
SIMULATE_AWK = """\
BEGIN { RS = "\\001" }
{ s = $0; gsub(/[{} "\\n]/, "", s); n = split(s, kv, ",");
  for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] + 0 } }
END { k = (particle == "pi+") ? 1.0 : 2.0; value = v["x"] * eta + k * v["y"];
  printf "%.17g", value > "hits.txt";
  out = ENVIRON["AID2E_RESULT_FILE"];
  printf "{\\"value\\": %.17g, \\"job_file\\": \\"%s\\"}\\n", value, ENVIRON["AID2E_JOB_FILE"] > out }
"""


def write_scripts(where: Path) -> dict[str, Path]:
    """The stage scripts, written into ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in (("geometry", GEOMETRY), ("simulate", SIMULATE), ("reconstruct", RECONSTRUCT),
                       ("simulate.awk", SIMULATE_AWK)):
        paths[name] = where / (name if "." in name else f"{name}.py")
        paths[name].write_text(text)
    return paths


def analyze(x: float, y: float, inputs: dict[str, Any]) -> dict[str, Any]:
    """The fan-in: every reconstruct job's output -> two objectives with their standard errors."""
    reco = {particle: [job["result"]["reco"] for job in inputs["reconstruct"] if job["fan_out"]["particle"] == particle]
            for particle in PARTICLES}
    assert len(inputs["simulate"]) == 4 and len(inputs["geometry"]) == 1
    sep, acc = _mean_sem(reco["pi+"]), _mean_sem(reco["kaon+"])
    return {"sep": sep, "acc": acc[0], "acc_err": acc[1]}


def x_plus_y(x: float, y: float) -> dict[str, float]:
    """A one-stage trial's function, named by module path in tests ("drich_toy:x_plus_y")."""
    return {"objective": x + y}


def _mean_sem(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def expected(x: float, y: float) -> dict[str, tuple[float, float]] | None:
    """The metrics a trial at (x, y) gets: None when its geometry overlaps (penalized)."""
    if x > 0.8:
        return None
    reco = {particle: [2 * (x * eta + K[particle] * y) + 0.5 for eta in ETAS] for particle in PARTICLES}
    return {"sep": _mean_sem(reco["pi+"]), "acc": _mean_sem(reco["kaon+"])}


def workflow(scripts: dict[str, Path], runs_log: Path, *, simulate_on: Any = None, pause: float = 0.0,
             simulate_container: dict[str, Any] | None = None) -> Any:
    """The toy's workflow: ``simulate_on`` runs the simulations (None: the scheduler's runner)."""
    from aid2e import Stage, Workflow

    python = sys.executable
    simulate = (dict(container=simulate_container) if simulate_container is not None else
                dict(script=[python, str(scripts["simulate"]), "{particle}", "{eta}", str(runs_log), str(pause)]))
    return Workflow([
        Stage("geometry", script=[python, str(scripts["geometry"]), str(runs_log)], exit_codes={9: "penalty"}),
        Stage("simulate", backend=simulate_on, fan_out={"particle": list(PARTICLES), "eta": list(ETAS)},
              resources={"cpus": 1, "memory": "200M", "walltime": "00:10:00"}, **simulate),
        Stage("reconstruct", script=[python, str(scripts["reconstruct"]), str(runs_log)], per="simulate"),
        Stage("analyze", function=analyze),
    ])


PENALTY = {"sep": 100.0, "acc": 100.0}


def make_runner(spec: str) -> Any:
    if spec == "joblib":
        from aid2e_joblib import JobLibRunner

        return JobLibRunner(n_jobs=4, pool="threading")
    from aid2e_psij import SlurmRunner

    return SlurmRunner(partition=spec.split(":", 1)[1], time_limit="00:10:00", config={"max_in_flight": 8})


def main(argv: list[str]) -> None:
    """The controller of the kill-and-resume test: the geometry, reconstruct and analyze stages
    on local threads, the simulations on ``SIMULATE_ON`` (each sleeping 1 s)."""
    command, root, total, simulate_on = argv[1], Path(argv[2]), int(argv[3]), argv[4]
    warnings.simplefilter("ignore")
    from aid2e import AxScheduler
    from aid2e_joblib import JobLibRunner

    scripts = write_scripts(root / "scripts")
    runs_log = root / "runs.log"
    simulate = None if simulate_on == "joblib" else make_runner(simulate_on)
    flow = workflow(scripts, runs_log, simulate_on=simulate, pause=1.0)
    config = {"job_output_dir": str(root / "jobs"), "monitoring_interval": 0.5, "snapshot_interval": 0,
              "penalty": PENALTY, "max_parallel_trials": 3, "max_retries": 1}  # a function job dies with its controller
    if command == "start":
        from aid2e.testing.experiments import unit_square_ax_client

        scheduler = AxScheduler(unit_square_ax_client("drich_killed", objectives=("sep", "acc"), seed=7),
                                JobLibRunner(n_jobs=4, pool="threading"), config)
    else:
        scheduler = AxScheduler.resume(str(root / "jobs" / "drich_killed"), JobLibRunner(n_jobs=4, pool="threading"),
                                       {"monitoring_interval": 0.5})
    scheduler.set_workflow(flow)
    scheduler.run_optimization(max_trials=total - len(scheduler.trials))
    print("done", len(scheduler.trials))


if __name__ == "__main__":
    main(sys.argv)
