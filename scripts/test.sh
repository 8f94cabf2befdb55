#!/usr/bin/env bash
# Set up .venv with every plugin and test dependency, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
