#!/usr/bin/env bash
# Set up .venv with the docs tools (scripts/setup.sh --test pins mkdocs, mkdocs-material and mkdocstrings;
# a no-op when nothing changed) and build the documentation site (mkdocs.yml, docs/) into site/ with
# mkdocs build --strict: any warning, e.g. a broken link, fails it. Extra arguments go to mkdocs build
# (e.g. -d DIR). Look at it: .venv/bin/mkdocs serve (http://127.0.0.1:8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export NO_MKDOCS_2_WARNING=1   # mkdocs-material's end-of-life banner on every build (the versions are pinned)
exec .venv/bin/python -m mkdocs build --strict "$@"
