#!/usr/bin/env bash
# Set up .venv (first run only) and run the main demo on the local joblib backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python examples/detector_optimization.py "$@"
