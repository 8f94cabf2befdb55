"""A controller that dies (``os._exit``, like a SIGKILL: nothing saved after) at a chosen point of
a joblib script campaign, for the tests of the campaign record (run as a script, not collected).

    python dying_controller.py JOB_OUTPUT_DIR POINT TOTAL

POINT is one of
* ``before-submit:N``: after trial N's record was saved, just before its job is submitted;
* ``after-submit:N``: right after trial N's job was submitted (its handle not yet saved);
* ``after-retry-submit:N``: right after the job of trial N's second attempt was submitted.

The objective (a Python script) appends "<trial> <attempt dir> <pid>" to $RUNS_LOG when it
starts, waits for the file $GATE when that variable is set, and writes ``objective = 2x + y``.
When $FAIL_FIRST_ATTEMPT names a trial, that trial's first attempt kills its own launcher (an
infrastructure failure: the job ends with no recorded exit status, which is retried).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

OBJECTIVE = """\
import json, os, signal, time
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
trial = os.environ["AID2E_TRIAL_INDEX"]
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(f"{trial} {os.path.basename(os.getcwd())} {os.getpid()}\\n")
if os.environ.get("FAIL_FIRST_ATTEMPT") == trial and os.path.basename(os.getcwd()).startswith("trial_"):
    os.kill(os.getppid(), signal.SIGKILL)  # the launcher dies: no exit status is recorded
    raise SystemExit(0)
gate = os.environ.get("GATE")
while gate and not os.path.exists(gate):
    time.sleep(0.02)
json.dump({"objective": 2 * p["x"] + p["y"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def make_client(name: str = "record"):
    from ax.service.ax_client import AxClient, ObjectiveProperties

    from aid2e.testing.experiments import sobol_generation_strategy

    client = AxClient(generation_strategy=sobol_generation_strategy(), verbose_logging=False, random_seed=3)
    client.create_experiment(
        name=name,
        parameters=[{"name": "x", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"},
                    {"name": "y", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"}],
        objectives={"objective": ObjectiveProperties(minimize=True)},
    )
    return client


def write_objective(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    script = where / "objective.py"
    script.write_text(OBJECTIVE)
    return script


def dying_runner(point: str):
    from aid2e_joblib import JobLibRunner

    where, _, trial = point.partition(":")
    target = int(trial)

    class DyingRunner(JobLibRunner):
        def submit(self, request):
            if request.trial_index == target and where == "before-submit":
                os._exit(17)
            handle = super().submit(request)
            retry = Path(request.workdir).name == "attempt_2"
            if request.trial_index == target and (where == "after-submit" or where == "after-retry-submit" and retry):
                os._exit(17)
            return handle

    return DyingRunner(n_jobs=3, pool="threading")


def main(argv: list[str]) -> None:
    root, point, total = Path(argv[1]), argv[2], int(argv[3])
    warnings.simplefilter("ignore")
    from aid2e import AxScheduler

    config = {"job_output_dir": str(root), "monitoring_interval": 0.2, "snapshot_interval": 0, "max_retries": 1}
    scheduler = AxScheduler(make_client(), dying_runner(point), config)
    scheduler.set_script_objective(str(write_objective(root.parent / "objective")))
    scheduler.run_optimization(max_trials=total)
    print("the controller did not die", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main(sys.argv)
