#!/usr/bin/env bash
# Set up .venv with every plugin and test tool, start the services the tests use (each script
# in scripts/services/ installs and starts one, or says why it cannot), then run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
for service in scripts/services/*.sh; do
    [[ -e "$service" ]] || continue
    bash "$service"
done
.venv/bin/ruff check core plugins tests examples bench
exec .venv/bin/python -m pytest "$@"
