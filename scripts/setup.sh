#!/usr/bin/env bash
# Create or update .venv with aid2e and its plugins. Idempotent; a no-op when nothing changed.
#   scripts/setup.sh          the core and the joblib plugin (enough for the demo)
#   scripts/setup.sh --test   the core, every plugin under plugins/, the example backend of the plugin tutorial
#                             (examples/aid2e-nice), the test tools and the docs tools
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AID2E_VENV:-.venv}
mode=${1:-}
if [[ "$mode" == "--test" ]]; then
    want="core $(for d in plugins/*/; do [[ -f "$d/pyproject.toml" ]] && printf '%s ' "${d%/}"; done)examples/aid2e-nice"
    extras="pytest>=8 pytest-timeout>=2.3 ruff hypothesis selenium"
    # the documentation site (scripts/docs.sh, tests/test_docs_site.py), pinned: mkdocs --strict fails on new warnings
    extras+=" mkdocs==1.6.1 mkdocs-material==9.8.2 mkdocstrings==1.0.8 mkdocstrings-python==2.0.11"
else
    want="core plugins/joblib"
    extras=""
fi
stamp="$VENV/.aid2e-setup${mode:+-${mode#--}}"
digest=$( (echo "$want $extras"; for p in $want; do cat "$p/pyproject.toml"; done) | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
args=()
for pkg in $want; do args+=(-e "./$pkg"); done
# torch is pinned to the CPU build that lies on this machine's disk; elsewhere pick your own build.
set +e
"$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==2.13.0" "${args[@]}" $extras 2>&1 \
    | grep -v "^WARNING: Location .* is ignored"
status=${PIPESTATUS[0]}
set -e
[[ "$status" == 0 ]] || { echo "setup failed: pip install exited $status" >&2; exit "$status"; }
echo "$digest" > "$stamp"
