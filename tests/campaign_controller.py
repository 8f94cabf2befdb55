"""A controller process for the kill-and-resume tests (run as a script, not collected by pytest).

    python campaign_controller.py start STATE_ROOT TOTAL RUNNER   # new campaign of TOTAL trials
    python campaign_controller.py resume STATE_DIR TOTAL RUNNER   # continue until TOTAL trials

RUNNER is "joblib" or "slurm:<partition>". The objective script appends "<trial> <pid>" to
$RUNS_LOG when it starts (so a test counts executions), sleeps a little and writes 2*x + y.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

OBJECTIVE = """\
import json, os, random, time
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(f"{os.environ['AID2E_TRIAL_INDEX']} {os.getpid()}\\n")
time.sleep(0.2 + random.random() * 0.6)
json.dump({"objective": 2 * p["x"] + p["y"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def make_runner(spec: str):
    if spec == "joblib":
        from aid2e_joblib import JobLibRunner

        return JobLibRunner(n_jobs=3, pool="threading")
    from aid2e_psij import SlurmRunner

    return SlurmRunner(partition=spec.split(":", 1)[1], time_limit="00:10:00", config={"max_in_flight": 3})


def main(argv: list[str]) -> None:
    command, path, total, runner_spec = argv[1], Path(argv[2]), int(argv[3]), argv[4]
    warnings.simplefilter("ignore")
    from aid2e import AxScheduler

    config = {"job_output_dir": str(path), "monitoring_interval": 0.5, "snapshot_interval": 0}
    if command == "start":
        from ax.service.ax_client import AxClient, ObjectiveProperties

        from aid2e.testing.experiments import sobol_generation_strategy

        client = AxClient(generation_strategy=sobol_generation_strategy(), verbose_logging=False, random_seed=5)
        client.create_experiment(
            name="killed",
            parameters=[{"name": "x", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"},
                        {"name": "y", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"}],
            objectives={"objective": ObjectiveProperties(minimize=True)},
        )
        script = path / "objective.py"
        path.mkdir(parents=True, exist_ok=True)
        script.write_text(OBJECTIVE)
        scheduler = AxScheduler(client, make_runner(runner_spec), config)
        scheduler.set_script_objective(str(script))
    else:
        scheduler = AxScheduler.resume(str(path), make_runner(runner_spec), {"monitoring_interval": 0.5})
    scheduler.run_optimization(max_trials=total - len(scheduler.trials))
    print("done", len(scheduler.trials))


if __name__ == "__main__":
    main(sys.argv)
