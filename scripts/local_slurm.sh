#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, from Debian's packages (docs/clusters.md,
# "Try the SLURM path on your laptop"):
#
#   scripts/local_slurm.sh up       # install slurm-wlm + munge if missing (root, apt-get), start
#   scripts/local_slurm.sh status   # the daemons this script started, and sinfo
#   scripts/local_slurm.sh down     # stop exactly those daemons (by the pids it recorded)
#
# One node (this host, all its cores and memory), one partition "local", cons_tres, no
# accounting, no cgroups (containers rarely allow them). It writes /etc/slurm/slurm.conf only
# when that file is missing or was written by this script, so a real cluster's config is never
# touched. Idempotent: `up` on a running cluster reports it and does nothing.
# State, pids and logs: $LOGO_TAL_SLURM_DIR (default /tmp/logo-tal-slurm).
set -euo pipefail

STATE=${LOGO_TAL_SLURM_DIR:-/tmp/logo-tal-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by logo-tal scripts/local_slurm.sh"
NODE=$(hostname -s)

say() { echo "local_slurm: $*"; }
die() { echo "local_slurm: $*" >&2; exit 1; }

alive() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    [[ $(id -u) -eq 0 ]] || die "slurm-wlm and munge are not installed; run as root (or install them)"
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get"
    say "installing slurm-wlm and munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script: not touching a real cluster's config"
    fi
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p /etc/slurm "$STATE/state" "$STATE/spool" "$STATE/log"
    cat >"$CONF" <<EOF
$MARKER
ClusterName=logo-tal-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged is already serving (this script's or the system's)
    fi
    if [[ ! -f /etc/munge/munge.key ]]; then
        if command -v mungekey >/dev/null; then mungekey --create >/dev/null 2>&1
        else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    # munged drops to its own user when it can; it writes no pid file where that user cannot,
    # so the pid is taken from the process it just started.
    if id munge >/dev/null 2>&1; then runuser -u munge -- munged
    else munged --force; fi
    pgrep -xn munged >"$STATE/munged.pid"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

up() {
    mkdir -p "$STATE"
    if alive slurmctld && alive slurmd; then
        say "already up"; status; return
    fi
    install_packages
    write_conf
    start_munge
    alive slurmctld || slurmctld -i
    alive slurmd || slurmd -N "$NODE"
    for _ in $(seq 100); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            say "up: partition 'local' on $NODE ($(nproc) CPUs); logs in $STATE/log"
            return
        fi
        sleep 0.2
    done
    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
    sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' \
        || die "the node did not come up; see $STATE/log/slurmctld.log and slurmd.log"
    say "up: partition 'local' on $NODE; logs in $STATE/log"
}

down() {
    local stopped=0
    for daemon in slurmd slurmctld munged; do
        if alive "$daemon"; then
            kill "$(cat "$STATE/$daemon.pid")"; stopped=$((stopped + 1))
            for _ in $(seq 50); do alive "$daemon" || break; sleep 0.1; done
        fi
        rm -f "$STATE/$daemon.pid"
    done
    say "down: stopped $stopped daemon(s) this script had started; logs stay in $STATE/log"
}

status() {
    local daemon
    for daemon in munged slurmctld slurmd; do
        if alive "$daemon"; then say "$daemon running (pid $(cat "$STATE/$daemon.pid"))"
        else say "$daemon not running (not started by this script)"; fi
    done
    command -v sinfo >/dev/null && sinfo 2>/dev/null || true
    say "logs: $STATE/log"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) die "usage: $0 up|down|status" ;;
esac
