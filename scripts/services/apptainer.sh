#!/usr/bin/env bash
# apptainer.sh - a real Apptainer (and a `singularity` alias) for the aid2e-containers tests,
# with local test images and no registry.
#
# Idempotent (about 1 s when everything is in place). Debian 12 has no Apptainer package, so when
# run as root on a Debian-like system with apt-get and no working apptainer/singularity on PATH, it
#   1. installs patchelf, squashfs-tools and busybox-static from the configured mirror (apt);
#   2. downloads apptainer, libc6, libseccomp2 and libsqlite3-0 from Debian sid on the same mirror
#      (a private apt state under $AID2E_CONTAINERS_HOME; the system's apt is not changed), unpacks
#      them into Apptainer's relocatable layout under $AID2E_APPTAINER_PREFIX (/opt/apptainer/usr)
#      and points its two ELF programs at that private glibc (sid's apptainer needs glibc >= 2.38,
#      bookworm has 2.36);
#   3. sets "root default capabilities" to what this process has (the full set includes
#      CAP_SYS_RESOURCE, which containers without it refuse), "systemd cgroups = no" where systemd
#      is not PID 1 (so --cpus/--memory work through cgroupfs), and links apptainer and singularity
#      (spython hard-codes that name) into /usr/local/bin;
#   4. builds the test images: an unpacked busybox root directory (CVMFS style) and a SIF built
#      from it with `apptainer build` (no registry); where no CVMFS is mounted, links the busybox
#      directory at the path of an EIC image on CVMFS ($AID2E_CVMFS_IMAGE, default
#      /cvmfs/singularity.opensciencegrid.org/eicweb/eic_xl:nightly), so that the documentation's
#      Apptainer blocks run with the path a real site has (a stand-in, marked by a file
#      AID2E-STAND-IN next to the repository's directories; a real CVMFS is never touched);
#   5. smoke-tests both images (output and exit status must come back), and --cpus/--memory, and
#      writes $AID2E_CONTAINERS_HOME/apptainer.json: "ok" or why Apptainer does not work, the same
#      for its resource limits ("limits"), the program, its version, the images and how long the
#      install took. The container tests read it and skip
#      with that reason (or fail, where AID2E_REQUIRE names apptainer).
# Where installing is not possible (not root, no apt-get, mirror unreachable) it says why and
# exits 0.
#
#   bash scripts/services/apptainer.sh            set up (or re-check) everything
#   bash scripts/services/apptainer.sh --remove   remove what it installed (not the apt packages)
#
# Knobs: AID2E_CONTAINERS_HOME (/var/lib/aid2e-containers), AID2E_APPTAINER_PREFIX (/opt/apptainer),
#        AID2E_CVMFS_IMAGE (the stand-in's path; empty: none),
#        AID2E_APPTAINER_MIRROR (the Debian mirror for sid; default: the first one in the apt sources),
#        AID2E_APPTAINER=0 to skip Apptainer altogether.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/busybox-rootfs.sh"

HOME_DIR=${AID2E_CONTAINERS_HOME:-/var/lib/aid2e-containers}
PREFIX=${AID2E_APPTAINER_PREFIX:-/opt/apptainer}
WORK=$HOME_DIR/apptainer
STATE=$HOME_DIR/apptainer.json
ROOTFS=$WORK/busybox.rootfs
SIF=$WORK/busybox.sif
CVMFS_IMAGE=${AID2E_CVMFS_IMAGE-/cvmfs/singularity.opensciencegrid.org/eicweb/eic_xl:nightly}
CVMFS_NOTE=AID2E-STAND-IN
cvmfs_image=""
LINKS=/usr/local/bin
started=$EPOCHREALTIME
install_seconds=0
limits="not checked"

say() { printf '[apptainer] %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

write_state() {  # write_state STATUS [PROGRAM]
    local status=$1 program=${2:-} version=""
    [[ -n "$program" ]] && version=$("$program" --version 2>/dev/null || true)
    mkdir -p "$HOME_DIR"
    cat > "$STATE.tmp" <<EOF
{
  "apptainer": $(json_str "$status"),
  "limits": $(json_str "$limits"),
  "executable": $(json_str "$program"),
  "version": $(json_str "$version"),
  "rootfs": $(json_str "$ROOTFS"),
  "sif": $(json_str "$SIF"),
  "cvmfs_image": $(json_str "$cvmfs_image"),
  "install_seconds": $install_seconds
}
EOF
    mv "$STATE.tmp" "$STATE"
}

give_up() {  # give_up REASON: record why Apptainer is not usable, exit 0 (the tests then skip)
    write_state "$1"
    say "not available: $1 (the apptainer tests will skip)"
    exit 0
}

# any unexpected failure: record it and exit 0, so the test command still runs (and the tests say why)
trap 'give_up "scripts/services/apptainer.sh failed at line $LINENO: $BASH_COMMAND"' ERR

# The CVMFS repository directory of the stand-in image (/cvmfs/<repository>), "" without one.
cvmfs_repository() { [[ "$CVMFS_IMAGE" == /cvmfs/?*/?* ]] && echo "$CVMFS_IMAGE" | cut -d/ -f1-3; }

if [[ "${1:-}" == "--remove" ]]; then
    for link in "$LINKS/apptainer" "$LINKS/singularity"; do
        [[ "$(readlink "$link" 2>/dev/null)" == "$PREFIX"/* ]] && rm -f "$link"
    done
    repository=$(cvmfs_repository || true)
    if [[ -n "$repository" && -f "$repository/$CVMFS_NOTE" ]]; then  # only our stand-in
        rm -rf "$repository"
        rmdir /cvmfs 2>/dev/null || true
    fi
    rm -rf "$PREFIX" "$WORK" "$STATE"
    say "removed $PREFIX, $WORK and the links in $LINKS"
    exit 0
fi
if ! mkdir -p "$HOME_DIR" 2>/dev/null || [[ ! -w "$HOME_DIR" ]]; then
    say "skipped: cannot write $HOME_DIR (run as root, or set AID2E_CONTAINERS_HOME; the apptainer tests will skip)"
    exit 0
fi
if [[ "${AID2E_APPTAINER:-1}" == 0 ]]; then
    give_up "not set up (AID2E_APPTAINER=0)"
fi

works() { "$1" --version >/dev/null 2>&1; }

# ------------------------------------------------------------------ 0. an Apptainer already there?
program=""
for candidate in apptainer singularity; do
    found=$(command -v "$candidate" 2>/dev/null || true)
    if [[ -n "$found" ]] && works "$found"; then program=$(readlink -f "$found"); break; fi
done
if [[ -z "$program" && -x "$PREFIX/usr/bin/apptainer" ]] && works "$PREFIX/usr/bin/apptainer"; then
    program=$PREFIX/usr/bin/apptainer
fi

need_root() {
    [[ "$(id -u)" == 0 ]] || give_up "$1 needs root (run scripts/services/apptainer.sh as root)"
    command -v apt-get >/dev/null && command -v dpkg-query >/dev/null ||
        give_up "$1 needs apt-get/dpkg (a Debian-like system); install Apptainer yourself"
}

# ------------------------------------------------------------------ 1. bookworm packages
pkgs=(squashfs-tools busybox-static)
[[ -z "$program" ]] && pkgs+=(patchelf)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
install_started=$EPOCHREALTIME
if (( ${#missing[@]} )); then
    need_root "installing ${missing[*]}"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! out=$({ apt-get update -q -o DPkg::Lock::Timeout=300 &&
                 apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"; } 2>&1); then
        give_up "apt-get could not install ${missing[*]}: $(printf '%s' "$out" | tail -1)"
    fi
fi

# ------------------------------------------------------------------ 2. Apptainer from Debian sid
if [[ -z "$program" ]]; then
    need_root "installing Apptainer"
    mirror=${AID2E_APPTAINER_MIRROR:-}
    [[ -n "$mirror" ]] ||
        mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [[ -n "$mirror" ]] ||
        mirror=$(awk '$1=="deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n "$mirror" ]] || give_up "no Debian mirror in the apt sources to take Apptainer from"
    say "installing Apptainer from Debian sid ($mirror) into $PREFIX"
    sid=$WORK/apt-sid
    rm -rf "$sid"
    mkdir -p "$sid/lists/partial" "$sid/cache/archives/partial" "$sid/debs" "$sid/x"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" > "$sid/sources.list"
    apt_sid=(-o Dir::Etc::sourcelist="$sid/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$sid/lists"
             -o Dir::Cache="$sid/cache" -o APT::Sandbox::User=root -o Acquire::http::Timeout=30 -o Acquire::Retries=2)
    # apt-get update exits 0 when a source cannot be fetched: look for sid's package list
    out=$(apt-get "${apt_sid[@]}" -q update 2>&1) || true
    if ! compgen -G "$sid/lists/*_dists_sid_main_binary-*_Packages*" >/dev/null; then
        give_up "cannot read Debian sid from $mirror: $(printf '%s' "$out" | grep -A1 -E '^(E|W|Err):' | head -2 | tr -s ' \n' ' ')"
    fi
    if ! out=$(cd "$sid/debs" && apt-get "${apt_sid[@]}" -q download apptainer libc6 libseccomp2 libsqlite3-0 2>&1); then
        give_up "cannot download apptainer from Debian sid: $(printf '%s' "$out" | tail -1)"
    fi
    new=$PREFIX.tmp
    rm -rf "$new"
    mkdir -p "$new/lib"
    dpkg-deb -x "$sid"/debs/apptainer_*.deb "$new"
    for deb in libc6 libseccomp2 libsqlite3-0; do dpkg-deb -x "$sid"/debs/${deb}_*.deb "$sid/x"; done
    cp -aL "$sid"/x/usr/lib/x86_64-linux-gnu/{ld-linux-x86-64.so.2,libc.so.6,libm.so.6,libpthread.so.0,libdl.so.2,libresolv.so.2,librt.so.1,libseccomp.so.2,libsqlite3.so.0} "$new/lib/"
    # Apptainer's relocatable layout: prefix $PREFIX/usr; the starter finds etc and var via usr/lib/..
    mv "$new/etc" "$new/usr/etc"
    mkdir -p "$new/usr/var/lib"
    mv "$new/var/lib/apptainer" "$new/usr/var/lib/"
    rm -rf "$new/var"
    ln -sfn ../etc "$new/usr/lib/etc"
    ln -sfn ../var "$new/usr/lib/var"
    # DT_RPATH (not RUNPATH), so that libsqlite3's own libm also comes from $PREFIX/lib
    for elf in usr/bin/apptainer usr/lib/x86_64-linux-gnu/apptainer/bin/starter; do
        patchelf --set-interpreter "$PREFIX/lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$PREFIX/lib" "$new/$elf"
    done
    rm -rf "$PREFIX"
    mv "$new" "$PREFIX"
    rm -rf "$sid"
    works "$PREFIX/usr/bin/apptainer" ||
        give_up "the relocated apptainer does not start: $("$PREFIX/usr/bin/apptainer" --version 2>&1 | tail -1)"
    program=$PREFIX/usr/bin/apptainer
    install_seconds=$(elapsed "$install_started")
    say "installed $("$program" --version) in $install_seconds s"
fi

# ------------------------------------------------------------------ 3. configuration and links
if [[ "$program" == "$PREFIX"/* && -w "$PREFIX/usr/etc/apptainer/apptainer.conf" ]]; then
    # root's "full" capability set includes CAP_SYS_RESOURCE; where this process lacks it, apptainer
    # fails with "Requesting capability set 0x000001ffffffffff while permitted capability set is ..."
    capeff=$(awk '/^CapEff/{print $2}' /proc/self/status)
    if (( (16#$capeff >> 24) & 1 )); then rootcaps=full; else rootcaps=no; fi
    conf=$PREFIX/usr/etc/apptainer/apptainer.conf
    if ! grep -qx "root default capabilities = $rootcaps" "$conf"; then
        sed -i "s/^root default capabilities = .*/root default capabilities = $rootcaps/" "$conf"
        say "apptainer.conf: root default capabilities = $rootcaps"
    fi
    # --cpus/--memory go through cgroups; the default systemd manager needs systemd as PID 1:
    # "cannot use systemd cgroups manager, systemd not running as init on this host"
    if [[ "$(cat /proc/1/comm 2>/dev/null)" == systemd ]]; then cgmanager=yes; else cgmanager=no; fi
    if ! grep -qx "systemd cgroups = $cgmanager" "$conf"; then
        sed -i "s/^systemd cgroups = .*/systemd cgroups = $cgmanager/" "$conf"
        say "apptainer.conf: systemd cgroups = $cgmanager"
    fi
    if [[ -w "$LINKS" ]]; then
        for name in apptainer singularity; do
            link=$LINKS/$name
            if [[ ! -e "$link" && ! -L "$link" ]] || [[ "$(readlink "$link")" == "$PREFIX"/* ]]; then
                [[ "$(readlink "$link" 2>/dev/null)" == "$program" ]] || ln -sfn "$program" "$link"
            else
                say "leaving $link alone (not ours)"
            fi
        done
        command -v apptainer >/dev/null || say "note: $LINKS is not on PATH; use $program"
    fi
fi

# ------------------------------------------------------------------ 4. test images (no registry)
if [[ ! -x "$ROOTFS/bin/busybox" ]]; then
    say "building a busybox root directory $ROOTFS"
    build_busybox_rootfs "$ROOTFS.tmp"
    rm -rf "$ROOTFS" "$SIF"
    mv "$ROOTFS.tmp" "$ROOTFS"
fi
if [[ ! -s "$SIF" ]]; then
    say "apptainer build $SIF from $ROOTFS"
    rm -f "$SIF.tmp"
    if ! out=$("$program" -s build "$SIF.tmp" "$ROOTFS" 2>&1); then
        rm -f "$SIF.tmp"
        give_up "apptainer build of a SIF from $ROOTFS failed: $(printf '%s' "$out" | tail -2 | tr '\n' ' ')"
    fi
    mv "$SIF.tmp" "$SIF"
fi

# ------------------------------------------------------------------ 4b. an EIC image path as on CVMFS
# The documentation runs Apptainer with /cvmfs/singularity.opensciencegrid.org/eicweb/eic_xl:nightly,
# an unpacked image directory on a real site. Without CVMFS, that path becomes a symlink to the
# busybox directory (on CVMFS, too, an image's tag is a link to a content-addressed directory).
repository=$(cvmfs_repository || true)
if [[ -z "$repository" ]]; then
    [[ -z "$CVMFS_IMAGE" ]] || say "AID2E_CVMFS_IMAGE=$CVMFS_IMAGE is not /cvmfs/<repository>/<path>: no stand-in"
elif [[ -f "$repository/$CVMFS_NOTE" ]] || { [[ ! -e "$repository" ]] && ! mountpoint -q /cvmfs 2>/dev/null; }; then
    if [[ "$(readlink "$CVMFS_IMAGE" 2>/dev/null)" != "$ROOTFS" ]]; then
        say "no CVMFS here: linking $CVMFS_IMAGE to $ROOTFS (a stand-in)"
        mkdir -p "$(dirname "$CVMFS_IMAGE")"
        ln -sfn "$ROOTFS" "$CVMFS_IMAGE"
        printf '%s\n' "Not CVMFS: a stand-in made by aid2e's scripts/services/apptainer.sh, so that" \
            "documentation blocks using $CVMFS_IMAGE run here; that path links to the busybox test image" \
            "$ROOTFS. Remove with: bash scripts/services/apptainer.sh --remove" > "$repository/$CVMFS_NOTE"
    fi
    cvmfs_image=$CVMFS_IMAGE
elif [[ -d "$CVMFS_IMAGE" ]]; then
    cvmfs_image=$CVMFS_IMAGE  # a real CVMFS (or someone else's directory): used as it is
else
    say "$repository exists but has no $CVMFS_IMAGE: not touched (the documentation's Apptainer page will fail)"
fi

# ------------------------------------------------------------------ 5. smoke tests + state file
smoke() {  # smoke [OPTIONS] IMAGE: prints "ok" or the reason; the container must print ok and exit 3
    local out rc=0
    out=$("$program" exec "$@" sh -c 'echo ok; exit 3' 2>&1) || rc=$?
    if [[ "$rc" == 3 && "$(printf '%s\n' "$out" | tail -1)" == ok ]]; then echo ok
    else printf '%s exec %s: exit %s: %s' "$program" "$*" "$rc" "$(printf '%s' "$out" | tail -2 | tr '\n' ' ')"; fi
}
status=$(smoke "$SIF")
[[ "$status" == ok ]] && status=$(smoke "$ROOTFS")
if [[ "$status" == ok && -n "$cvmfs_image" ]]; then
    cvmfs_status=$(smoke "$cvmfs_image")
    [[ "$cvmfs_status" == ok ]] || { say "warning: $cvmfs_image does not run: $cvmfs_status"; cvmfs_image=""; }
fi
if [[ "$status" == ok ]]; then  # resource limits (cgroups): a failure is reported, not fatal
    limits=$(smoke --memory 268435456 --cpus 1 "$SIF")
    [[ "$limits" == ok ]] || say "warning: resource limits (--cpus/--memory) do not work here: $limits"
fi
write_state "$status" "$program"
say "$("$program" --version) ($program): $status; state in $STATE ($(elapsed "$started") s)"
