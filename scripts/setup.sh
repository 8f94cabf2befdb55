#!/usr/bin/env bash
# Create or update .venv with aid2e and its plugins. Idempotent; a no-op when nothing changed.
#   scripts/setup.sh          the core and the joblib plugin (enough for the demo)
#   scripts/setup.sh --test   everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AID2E_VENV:-.venv}
want="core plugins/joblib"
extras=""
if [[ "${1:-}" == "--test" ]]; then
    extras="pytest>=8 pytest-timeout>=2.3 ruff"
fi
stamp="$VENV/.aid2e-setup${1:+-${1#--}}"
digest=$( (echo "$want $extras"; cat core/pyproject.toml plugins/*/pyproject.toml) | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
args=()
for pkg in $want; do args+=(-e "./$pkg"); done
# torch is pinned to the CPU build that lies on this machine's disk; elsewhere pick your own build.
"$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==2.13.0" "${args[@]}" $extras
echo "$digest" > "$stamp"
