"""A controller process running function trials on loky workers, for the stopping tests (run as
a script, not collected by pytest).

    python function_campaign.py DIR hang      # one trial that never returns, trial_timeout=1
    python function_campaign.py DIR sleep S   # 4 trials of S seconds, 2 at a time

Each call writes ``DIR/started_<x>`` (holding its worker's pid) when it starts and, for
``sleep``, ``DIR/done_<x>`` when it returns. The script prints ``returned`` once
run_optimization returned, or the CampaignInterrupted message, and exits 130 on the latter.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    where, mode = Path(argv[1]), argv[2]
    seconds = float(argv[3]) if len(argv) > 3 else 0.0
    warnings.simplefilter("ignore")
    from aid2e import AxScheduler
    from aid2e.errors import Aid2eError, CampaignInterrupted
    from aid2e.testing.experiments import unit_square_ax_client
    from aid2e_joblib import JobLibRunner

    markers = str(where)

    def objective(x: float, y: float) -> dict:  # pickled by value: defined in __main__
        Path(markers, f"started_{x}").write_text(str(os.getpid()))
        time.sleep(3600 if mode == "hang" else seconds)
        Path(markers, f"done_{x}").write_text("")
        return {"objective": x + y}

    config = {"job_output_dir": str(where / "jobs"), "monitoring_interval": 0.5, "tolerated_failure_rate": 1.0}
    if mode == "hang":
        config["trial_timeout"] = 1
    runner = JobLibRunner(n_jobs=2, pool="loky")
    scheduler = AxScheduler(unit_square_ax_client(mode), runner, {**config, "max_parallel_trials": 2})
    scheduler.set_objective_function(objective)
    try:
        scheduler.run_optimization(max_trials=1 if mode == "hang" else 4)
    except CampaignInterrupted as exc:
        print(exc, flush=True)
        return 130
    except Aid2eError as exc:
        print(exc, flush=True)
    print("returned", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
