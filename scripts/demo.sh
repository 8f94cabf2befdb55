#!/usr/bin/env bash
# Set up .venv (first run only) and run the main demo, the campaign file examples/calorimeter.yaml,
# on local cores. Each run is a new campaign under demo_runs/<date-time>/calorimeter/ (aid2e never
# overwrites one; AID2E_DEMO_DIR=DIR puts it in DIR); extra arguments go to `aid2e run` (e.g. --max-trials 8).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out="${AID2E_DEMO_DIR:-demo_runs/$(date +%Y%m%d-%H%M%S)}"
.venv/bin/aid2e validate examples/calorimeter.yaml
.venv/bin/aid2e run examples/calorimeter.yaml --output-dir "$out" "$@"
echo "(a grid search of the model finds resolution=0.0458 at absorber 2.7 mm, scintillator 4.5 mm)"
echo "look at it: .venv/bin/aid2e status $out/calorimeter"
