#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for testing the Slurm profiles end to end.
#
#   tests/cluster/slurm.sh start    install slurm-wlm + munge if missing, write the config, start the
#                                   daemons, wait until the node is idle
#   tests/cluster/slurm.sh status   daemons, node and queue; exit 0 only when all three daemons run
#   tests/cluster/slurm.sh stop     stop the daemons this script started (by their PID files)
#
# Needs root and no systemd/cgroups (proctrack/linuxproc, task/none). The node has 2 fake GPUs whose
# device files are clones of /dev/null: enough for Slurm to schedule `--gpus` and set
# CUDA_VISIBLE_DEVICES. Everything Slurm writes lives under $XSTILTS_SLURM_DIR (default
# /run/xstilts-slurm) except two things at their standard paths: munge (Slurm's auth/munge talks to its
# default socket) and a symlink /etc/slurm/slurm.conf -> our config, because the executor plugin strips
# SLURM_CONF from the environment of the `srun` it runs inside each job. All commands are idempotent.
set -euo pipefail

ROOT=${XSTILTS_SLURM_DIR:-/run/xstilts-slurm}
CONF=$ROOT/etc/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf
PARTITION=debug
WAIT_S=${XSTILTS_SLURM_WAIT_S:-30}
MUNGE_PID=/run/munge/munged.pid
NODE=$(hostname -s)
export SLURM_CONF=$CONF

log() { echo "slurm.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# True when the PID file exists and names a live process.
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    log "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >&2 \
        || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >&2; }
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    (( mem_mb > 0 )) || die "this machine has too little memory for a Slurm node"
    mkdir -p "$ROOT"/{etc,dev,state,spool,log,run}
    chown slurm:slurm "$ROOT"/{state,log,run}
    for i in 0 1; do
        [[ -c $ROOT/dev/gpu$i ]] || mknod -m 666 "$ROOT/dev/gpu$i" c 1 3
    done
    cat >"$CONF.tmp" <<EOF
# Written by tests/cluster/slurm.sh: a one-node test cluster on $NODE.
ClusterName=xstilts-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
# Finished jobs stay visible to squeue for 10 min: the executor polls squeue (no accounting here)
# and must still see a job's final state at its next poll.
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks for no memory would take the whole node.
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    cat >"$ROOT/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu File=$ROOT/dev/gpu[0-1]
EOF
}

start_munge() {
    if alive "$MUNGE_PID"; then return; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- /usr/sbin/mungekey --create
    runuser -u munge -- /usr/sbin/munged
    touch "$ROOT/run/munged.ours"
}

our_etc_conf() { [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$CONF" ]]; }

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null || true; }

wait_for_node() {
    local deadline=$((SECONDS + WAIT_S)) state
    while (( SECONDS < deadline )); do
        state=$(node_state)
        # idle when empty; mixed/allocated when jobs of an earlier start are still running.
        case $state in idle|mixed|allocated) return 0 ;; esac
        sleep 0.5
    done
    die "node $NODE not idle after ${WAIT_S}s (state '${state:-none}'); see $ROOT/log/"
}

cmd_start() {
    [[ $EUID -eq 0 ]] || die "needs root (installs packages, starts daemons)"
    install_packages
    if [[ -e $ETC_CONF || -L $ETC_CONF ]] && ! our_etc_conf; then
        die "$ETC_CONF exists and is not this script's: this machine has a Slurm config; not touching it"
    fi
    if alive "$ROOT/run/slurmctld.pid" && alive "$ROOT/run/slurmd.pid" && alive "$MUNGE_PID"; then
        log "already running"
    else
        stop_slurm
        write_config
        start_munge
        /usr/sbin/slurmctld
        /usr/sbin/slurmd
    fi
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -sfn "$CONF" "$ETC_CONF"
    wait_for_node
    log "node $NODE is up ($(node_state)); partition $PARTITION; config $CONF"
}

# Sends TERM to the daemon in PID file $1 and waits (bounded) until it is gone.
stop_pidfile() {
    local pidfile=$1 pid i
    alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill "$pid"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM; killing"; kill -9 "$pid"; fi
    rm -f "$pidfile"
}

stop_slurm() {
    stop_pidfile "$ROOT/run/slurmd.pid"
    stop_pidfile "$ROOT/run/slurmctld.pid"
}

cmd_stop() {
    stop_slurm
    if our_etc_conf; then rm -f "$ETC_CONF"; fi
    # munged may serve something else on this machine: stop it only when this script started it.
    if [[ -e $ROOT/run/munged.ours ]]; then
        stop_pidfile "$MUNGE_PID"
        rm -f "$ROOT/run/munged.ours"
    fi
    log "stopped"
}

cmd_status() {
    local ok=0 name pidfile
    for name in munged slurmctld slurmd; do
        pidfile=$ROOT/run/$name.pid
        [[ $name == munged ]] && pidfile=$MUNGE_PID
        if alive "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"
        else echo "$name: stopped"; ok=1; fi
    done
    (( ok == 0 )) || return 1
    sinfo -N -o "%N %T %c %m %G"
    squeue
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
