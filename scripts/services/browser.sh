#!/usr/bin/env bash
# browser.sh - a real headless Chromium and its chromedriver for the tests that open HTML reports
# and dashboards (aid2e.testing.browser drives them with selenium; nothing is ever downloaded).
#
# Idempotent (about 1 s when everything is in place). As root on a Debian-like system it
#   1. installs chromium, chromium-driver and fonts-liberation with apt (no recommends) if missing;
#   2. checks that chromium starts headless as root (--no-sandbox) and renders a page, and that
#      chromedriver runs and belongs to the same Chromium release;
#   3. writes $AID2E_BROWSER_MARKER (/run/aid2e-browser.env): AID2E_BROWSER=ok or why the browser
#      does not work, the two programs and their versions. Its presence means "the browser was set
#      up here": the browser tests then fail (not skip) when it does not work.
# Not root, no apt-get, or apt cannot install: it says why, removes the marker and exits 0 (the
# browser tests then skip, or fail where AID2E_REQUIRE names browser).
#
#   bash scripts/services/browser.sh            set up (or re-check) the browser
#   bash scripts/services/browser.sh --remove   forget it (removes the marker, not the packages)
set -euo pipefail
MARKER=${AID2E_BROWSER_MARKER:-/run/aid2e-browser.env}
started=$EPOCHREALTIME

say() { printf '[browser] %s\n' "$*"; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }
quote() { local s=${1//$'\n'/ }; printf "'%s'" "${s//\'/\'\\\'\'}"; }  # one line, for shlex/sh
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if [[ "${1:-}" == "--remove" ]]; then
    rm -f "$MARKER"
    say "removed $MARKER (the packages stay installed)"
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    say "skipped: not root, cannot install chromium (the browser tests skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    say "skipped: no apt-get/dpkg here; install chromium and chromedriver yourself (the browser tests skip)"
    exit 0
fi

# ------------------------------------------------------------------ 1. packages
missing=()
for p in chromium chromium-driver fonts-liberation; do installed "$p" || missing+=("$p"); done
if (( ${#missing[@]} )); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! out=$({ apt-get update -qq -o DPkg::Lock::Timeout=300 &&
                 apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"; } 2>&1)
    then
        rm -f "$MARKER"
        say "not available: apt-get could not install ${missing[*]}: $(printf '%s' "$out" | tail -1) (the browser tests skip)"
        exit 0
    fi
fi

# ------------------------------------------------------------------ 2. does it start headless?
chromium=$(command -v chromium || true)
driver=$(command -v chromedriver || true)
status=ok
browser_version="" driver_version="" start_seconds=""
if [[ -z "$chromium" || -z "$driver" ]]; then
    status="chromium or chromedriver is not on PATH although the packages are installed"
else
    browser_version=$("$chromium" --version 2>/dev/null | head -1 || true)
    driver_version=$("$driver" --version 2>/dev/null | head -1 || true)
    profile=$(mktemp -d)
    trap 'rm -rf "$profile"' EXIT
    t0=$EPOCHREALTIME
    set +e
    dom=$(timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
              --user-data-dir="$profile" --dump-dom 'data:text/html,<p id="aid2e">ok</p>' 2>"$profile.err")
    rc=$?
    set -e
    start_seconds=$(seconds_since "$t0")
    if [[ "$rc" != 0 || "$dom" != *'<p id="aid2e">ok</p>'* ]]; then
        status="chromium --headless --no-sandbox did not render a page (exit $rc$([[ $rc == 124 ]] && echo ': timed out after 60 s')): $(grep -v '^\s*$' "$profile.err" | tail -2 | tr '\n' ' ' | sed 's/ *$//')"
    elif [[ -z "$driver_version" ]]; then
        status="chromedriver does not run: $("$driver" --version 2>&1 | tail -1)"
    else
        browser_major=$(grep -oE '[0-9]+\.' <<<"$browser_version" | head -1)
        driver_major=$(grep -oE '[0-9]+\.' <<<"$driver_version" | head -1)
        [[ "$browser_major" == "$driver_major" ]] ||
            status="chromedriver ($driver_version) does not match chromium ($browser_version); apt-get install chromium chromium-driver"
    fi
    rm -f "$profile.err"
fi

# ------------------------------------------------------------------ 3. the marker
{
    echo "# written by aid2e's scripts/services/browser.sh: the browser was set up here"
    echo "AID2E_BROWSER=$(quote "$status")"
    echo "AID2E_CHROMIUM=$(quote "$chromium")"
    echo "AID2E_CHROMEDRIVER=$(quote "$driver")"
    echo "AID2E_CHROMIUM_VERSION=$(quote "$browser_version")"
    echo "AID2E_CHROMEDRIVER_VERSION=$(quote "$driver_version")"
    echo "AID2E_BROWSER_START_SECONDS=$(quote "$start_seconds")"
} > "$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
if [[ "$status" == ok ]]; then
    say "ready: ${browser_version%% built*} starts headless in $start_seconds s, ${driver_version%% (*} ($(seconds_since "$started") s)"
else
    say "NOT working: $status (the browser tests will fail; $MARKER)"
fi
