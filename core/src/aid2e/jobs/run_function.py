"""Run a pickled function job inside a batch job: ``python -m aid2e.jobs.run_function PAYLOAD``.

The script contract applies: parameters from ``$AID2E_PARAMS_FILE``, metrics (or, for call
style ``"output"``, the stage's output) written to ``$AID2E_RESULT_FILE``.
When the function raises or returns something that is not a dict of
finite metrics, the reason goes to stderr and the exit code is 1, so the trial fails with it.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

from aid2e import atomic
from aid2e.jobs.function import run_function_job
from aid2e.serialize import to_json
from aid2e.types import FunctionJob, JobState


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m aid2e.jobs.run_function PAYLOAD", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as handle:
        payload = pickle.load(handle)
    sys.path[:0] = [p for p in payload["sys_path"] if p not in sys.path]  # the controller's imports
    function, call_style = pickle.loads(payload["function"])
    with open(os.environ["AID2E_PARAMS_FILE"]) as handle:
        parameters = json.load(handle)
    result = run_function_job(FunctionJob(function=function, call_style=call_style), parameters)
    if result.state is not JobState.COMPLETED:
        print(result.message, file=sys.stderr)
        return 1
    if result.infeasible is not None:
        atomic.write_json(os.environ["AID2E_RESULT_FILE"], {"infeasible": result.infeasible})
        return 0
    if call_style == "output":  # a stage's output (checked JSON), not metrics
        atomic.write_json(os.environ["AID2E_RESULT_FILE"], result.output)
        return 0
    atomic.write_json(os.environ["AID2E_RESULT_FILE"], {k: to_json(v) for k, v in result.metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
