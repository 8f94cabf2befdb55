#!/usr/bin/env bash
# containers.sh - real container engines for the aid2e-containers tests, without any registry.
#
# Idempotent (about 1 s when everything is in place). When run as root on a Debian-like system
# with apt-get, it
#   1. installs podman (+ runc, conmon, catatonit), docker.io and busybox-static (apt, no recommends);
#   2. writes a containers.conf drop-in: runtime runc (crun cannot handle cgroup v1 "hybrid"
#      hosts) and ulimits pinned to what this process may set (podman's defaults are refused
#      where CAP_SYS_RESOURCE is missing);
#   3. starts a private dockerd (no iptables, no bridge, its own data root) on
#      unix:///run/aid2e-docker.sock unless it already answers there;
#   4. builds the test image localhost/aid2e-test:latest from a busybox-static root file system
#      (`podman import` / `docker import`: no registry needed);
#   5. smoke-tests each engine (output and exit status must come back) and writes what works to
#      $AID2E_CONTAINERS_HOME/state.json, where the tests and the example find engines and images.
# Apptainer/Singularity is scripts/services/apptainer.sh's (its state: apptainer.json).
# Where that is not possible (not root, no apt-get) it says why and exits 0: the tests then skip.
#
#   bash scripts/services/containers.sh          set up (or re-check) everything
#   bash scripts/services/containers.sh --stop   stop the dockerd this script started
#
# Knobs: AID2E_CONTAINERS_HOME (/var/lib/aid2e-containers), AID2E_DOCKER_SOCK (/run/aid2e-docker.sock),
#        AID2E_CONTAINERS_DOCKERD=0 to skip docker.io/dockerd.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/busybox-rootfs.sh"

HOME_DIR=${AID2E_CONTAINERS_HOME:-/var/lib/aid2e-containers}
DOCKER_SOCK=${AID2E_DOCKER_SOCK:-/run/aid2e-docker.sock}
WITH_DOCKERD=${AID2E_CONTAINERS_DOCKERD:-1}
IMAGE=localhost/aid2e-test:latest
STATE=$HOME_DIR/state.json
started=$EPOCHREALTIME

say() { printf '[containers] %s\n' "$*"; }

if [[ "${1:-}" == "--stop" ]]; then
    pidfile=$HOME_DIR/dockerd/dockerd.pid
    if [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "stopping dockerd (pid $(cat "$pidfile"))"
        kill "$(cat "$pidfile")"
    fi
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    say "skipped: needs root to install and start container engines (the container tests will skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    say "skipped: no apt-get/dpkg here; install podman or docker yourself (the container tests will skip)"
    exit 0
fi
mkdir -p "$HOME_DIR"

# ------------------------------------------------------------------ 1. packages
pkgs=(podman runc conmon catatonit netavark busybox-static)
[[ "$WITH_DOCKERD" == 1 ]] && pkgs+=(docker.io)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null &&
           apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null; }; then
        say "skipped: apt-get could not install ${missing[*]} (the container tests will skip)"
        exit 0
    fi
fi

# ------------------------------------------------------------------ 2. podman configuration
nofile=$(ulimit -Hn); [[ "$nofile" == unlimited || "$nofile" -gt 1048576 ]] && nofile=1048576
nproc=$(ulimit -Hu); [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
conf=/etc/containers/containers.conf.d/50-aid2e.conf
want_conf="# written by aid2e scripts/services/containers.sh
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
[engine]
runtime = \"runc\"
[network]
network_backend = \"netavark\""
if [[ "$(cat "$conf" 2>/dev/null)" != "$want_conf" ]]; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$want_conf" > "$conf"
    say "wrote $conf (runtime runc, ulimits nofile=$nofile nproc=$nproc)"
fi

# ------------------------------------------------------------------ 3. dockerd on a private socket
docker_ok() { timeout 5 docker -H "unix://$DOCKER_SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if [[ "$WITH_DOCKERD" == 1 ]] && ! docker_ok; then
    mkdir -p "$HOME_DIR/dockerd"
    rm -f "$DOCKER_SOCK"
    say "starting dockerd on unix://$DOCKER_SOCK (no iptables, no bridge, data root $HOME_DIR/dockerd)"
    setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
        --data-root "$HOME_DIR/dockerd/data" --exec-root "$HOME_DIR/dockerd/exec" \
        --pidfile "$HOME_DIR/dockerd/dockerd.pid" -H "unix://$DOCKER_SOCK" \
        </dev/null >"$HOME_DIR/dockerd/dockerd.log" 2>&1 &
    for _ in $(seq 100); do docker_ok && break; sleep 0.2; done
    docker_ok || say "dockerd did not come up; see $HOME_DIR/dockerd/dockerd.log"
fi

# ------------------------------------------------------------------ 4. the test image
rootfs=$HOME_DIR/rootfs
tarball=$HOME_DIR/rootfs.tar
if [[ ! -s "$tarball" ]]; then
    say "building a busybox root file system"
    build_busybox_rootfs "$rootfs"
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
changes=(--change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]')
if ! podman image exists "$IMAGE"; then
    say "podman import $IMAGE"
    podman import -q "${changes[@]}" "$tarball" "$IMAGE" >/dev/null
fi
if [[ "$WITH_DOCKERD" == 1 ]] && docker_ok && ! docker -H "unix://$DOCKER_SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
    say "docker import $IMAGE"
    docker -H "unix://$DOCKER_SOCK" import "${changes[@]}" "$tarball" "$IMAGE" >/dev/null
fi

# ------------------------------------------------------------------ 5. smoke tests + state file
smoke() {  # smoke CMD... : prints "ok" or the reason; the container must print ok and exit 3
    local out rc
    set +e; out=$("$@" "$IMAGE" sh -c 'echo ok; exit 3' 2>&1); rc=$?; set -e
    if [[ "$rc" == 3 && "$(printf '%s\n' "$out" | tail -1)" == ok ]]; then echo ok
    else printf 'exit %s: %s' "$rc" "$(printf '%s' "$out" | tail -2 | tr '\n' ' ')"; fi
}
podman_status=$(smoke podman run --rm --network=none)
docker_status="not set up (AID2E_CONTAINERS_DOCKERD=0)"
if [[ "$WITH_DOCKERD" == 1 ]]; then
    if docker_ok; then docker_status=$(smoke docker -H "unix://$DOCKER_SOCK" run --rm --network=none)
    else docker_status="dockerd is not answering on unix://$DOCKER_SOCK (see $HOME_DIR/dockerd/dockerd.log)"; fi
fi
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
cat > "$STATE.tmp" <<EOF
{
  "image": "$IMAGE",
  "rootfs": "$rootfs",
  "docker_host": "unix://$DOCKER_SOCK",
  "podman": $(json_str "$podman_status"),
  "docker": $(json_str "$docker_status")
}
EOF
mv "$STATE.tmp" "$STATE"
say "podman: $podman_status; docker (DOCKER_HOST=unix://$DOCKER_SOCK): $docker_status"
say "state in $STATE ($(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s)"
