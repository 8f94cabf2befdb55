#!/usr/bin/env bash
# Install (apt) and start a single-node Slurm cluster for the tests, idempotently, then wait
# until its node is idle. Not root or no apt: say why and exit 0 (the Slurm tests then skip).
# Node CPUs: AID2E_SLURM_CPUS (default 16; more slots than cores is fine for tests).
# Writes /run/aid2e-slurm.env (AID2E_SLURM_PARTITION=...) for the tests to find the cluster.
set -euo pipefail
log() { printf '[slurm] %s\n' "$*"; }
if [[ "$(id -u)" != 0 ]]; then log "skipped: not root, cannot install or start Slurm"; exit 0; fi
if ! command -v apt-get >/dev/null; then log "skipped: no apt-get to install Slurm"; exit 0; fi
started=$(date +%s.%N)
node=$(hostname -s)
cpus=${AID2E_SLURM_CPUS:-16}
mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
export DEBIAN_FRONTEND=noninteractive
missing=""
for pkg in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing="$missing $pkg"
done
if [[ -n "$missing" ]]; then
    log "installing:$missing"
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi
getent hosts "$node" >/dev/null || echo "127.0.0.1 $node" >> /etc/hosts

running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
    if running "$1"; then
        local pid; pid=$(cat "$1"); kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

# munge authenticates Slurm's daemons and commands
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null

install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd
conf=$(mktemp)
cat > "$conf" <<CONF
# written by aid2e's scripts/services/slurm.sh
ClusterName=aid2e
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# the default batch_sched_delay of 3 s makes 50 jobs take 65 s instead of 6 s
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=${node} Default=NO MaxTime=1 State=UP
CONF
if ! cmp -s "$conf" /etc/slurm/slurm.conf; then
    install -m 0644 "$conf" /etc/slurm/slurm.conf
    log "configuration changed: (re)starting the daemons"
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi
rm -f "$conf"
running /run/slurmctld.pid || /usr/sbin/slurmctld -i
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
running /run/slurmd.pid || /usr/sbin/slurmd
deadline=$(( $(date +%s) + ${AID2E_SLURM_WAIT:-60} ))
while :; do
    state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*) scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
    esac
    if [[ "$(date +%s)" -ge "$deadline" ]]; then
        log "node $node not ready (state '$state'); see /var/log/slurm"
        exit 1
    fi
    sleep 0.2
done
printf 'AID2E_SLURM_PARTITION=debug\nAID2E_SLURM_NODE=%s\n' "$node" > /run/aid2e-slurm.env
log "cluster ready: node $node $state, $(echo "$(date +%s.%N) - $started" | bc) s"
