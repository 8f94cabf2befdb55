#!/usr/bin/env python3
"""A script objective: what a simulation wrapper looks like to aid2e.

Reads the trial's parameters from $AID2E_PARAMS_FILE (a JSON object), "simulates", and writes
{metric: {"mean": m, "sem": s}} to $AID2E_RESULT_FILE. It runs in its trial directory; its
stdout and stderr land in stdout.txt and stderr.txt there. A non-zero exit fails the trial.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calorimeter_model import energy_resolution, stack_depth_mm  # noqa: E402

params = json.loads(Path(os.environ["AID2E_PARAMS_FILE"]).read_text())
absorber, scintillator = params["absorber_mm"], params["scintillator_mm"]
if absorber + scintillator > 19.0:
    print(f"geometry overlap: layers of {absorber + scintillator:.1f} mm do not fit", file=sys.stderr)
    sys.exit(3)
resolution = energy_resolution(absorber, scintillator)
print(f"trial {os.environ['AID2E_TRIAL_INDEX']}: sigma_E/E = {resolution:.4f}")
result = {
    # a simulation with 3000 electrons would estimate the resolution to about 1.3% of itself
    "resolution": {"mean": resolution, "sem": 0.013 * resolution},
    "depth_mm": {"mean": stack_depth_mm(absorber, scintillator), "sem": 0.0},
}
Path(os.environ["AID2E_RESULT_FILE"]).write_text(json.dumps(result))
