"""The dRICH-shaped campaign of drich_workflow.py with its simulations as Slurm jobs.

    python examples/drich_workflow_slurm.py --partition debug [--trials N] [--events N] [--output DIR]

The geometry, overlap check and analysis run on local cores (the scheduler's runner); each
trial's 4 simulations are batch jobs (1 CPU, 1 GB, 10 minutes), so 3 trials in flight keep up
to 12 of them in the queue. On a real cluster, give the shared file system as --output.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drich_workflow import parse, run  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    partition = "debug"
    if "--partition" in argv:
        at = argv.index("--partition")
        partition = argv[at + 1]
        del argv[at:at + 2]
    from aid2e import SlurmRunner

    run(parse(argv), simulate_on=SlurmRunner(partition=partition, time_limit="00:10:00",
                                              config={"max_in_flight": 12}), name="drich_slurm")
