#!/usr/bin/env bash
# Set up .venv with every plugin and test dependency, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check core plugins tests examples bench
exec .venv/bin/python -m pytest "$@"
