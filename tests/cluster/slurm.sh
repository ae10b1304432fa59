#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for testing the Slurm profiles end to end.
#
#   tests/cluster/slurm.sh start    install slurm-wlm, munge, slurmdbd and mariadb-server if missing, write
#                                   the configs, start the daemons, wait until the node is idle
#   tests/cluster/slurm.sh status   daemons, node and queue; exit 0 only when all five daemons run
#   tests/cluster/slurm.sh stop     stop the daemons this script started (by their PID files)
#
# With accounting, as real clusters have it: slurmdbd stores jobs in a private MariaDB (its own data dir,
# socket and port under $ROOT, not the system's), so `sacct` works and the Slurm executor plugin polls job
# states with it, its default.
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
CLUSTER=xstilts-test
DB_PORT=${XSTILTS_SLURM_DB_PORT:-3406}  # not 3306: a system MariaDB may listen there
DB_PASS=xstilts-test                   # the slurm DB user's password (local test database only)
WAIT_S=${XSTILTS_SLURM_WAIT_S:-30}
MUNGE_PID=/run/munge/munged.pid
NODE=$(hostname -s)
export SLURM_CONF=$CONF

log() { echo "slurm.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# True when the PID file exists and names a live process.
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v slurmdbd >/dev/null \
        && command -v mariadbd >/dev/null && return
    log "installing ${PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2 \
        || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2; }
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    (( mem_mb > 0 )) || die "this machine has too little memory for a Slurm node"
    mkdir -p "$ROOT"/{etc,dev,state,spool,log,run,db}
    chown slurm:slurm "$ROOT"/{state,log,run}
    for i in 0 1; do
        [[ -c $ROOT/dev/gpu$i ]] || mknod -m 666 "$ROOT/dev/gpu$i" c 1 3
    done
    cat >"$CONF.tmp" <<EOF
# Written by tests/cluster/slurm.sh: a one-node test cluster on $NODE.
ClusterName=$CLUSTER
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
# Finished jobs stay in slurmctld for 10 min (the tests read them with scontrol show job); the executor
# reads job states from accounting (sacct), as on a real cluster.
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks for no memory would take the whole node.
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    # slurmdbd reads slurmdbd.conf beside slurm.conf; it holds the DB password: slurm's, mode 600.
    cat >"$ROOT/etc/slurmdbd.conf.tmp" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=$ROOT/run/slurmdbd.pid
LogFile=$ROOT/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm "$ROOT/etc/slurmdbd.conf.tmp"
    chmod 600 "$ROOT/etc/slurmdbd.conf.tmp"
    mv "$ROOT/etc/slurmdbd.conf.tmp" "$ROOT/etc/slurmdbd.conf"
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

# A private MariaDB for slurmdbd: data dir (with its socket, PID file and log) $ROOT/db, TCP on
# 127.0.0.1:$DB_PORT.
DB_SOCK=$ROOT/db/mariadb.sock
DB_PID=$ROOT/db/mariadb.pid

db() { mariadb --protocol=socket --socket="$DB_SOCK" -u root "$@"; }

start_mariadb() {
    if alive "$DB_PID"; then return; fi
    mkdir -p "$ROOT/db"
    chown mysql:mysql "$ROOT/db"
    if [[ ! -d $ROOT/db/mysql ]]; then
        mariadb-install-db --user=mysql --datadir="$ROOT/db" --auth-root-authentication-method=socket \
            --skip-test-db >"$ROOT/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $ROOT/log/"
    fi
    # setsid + no inherited output: the daemon must not hold the caller's stdout/stderr open.
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$ROOT/db" --socket="$DB_SOCK" \
        --pid-file="$DB_PID" --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$ROOT/db/error.log" \
        </dev/null >/dev/null 2>&1 &
    local deadline=$((SECONDS + WAIT_S))
    until db -e "SELECT 1" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || die "mariadb not up after ${WAIT_S}s; see $ROOT/db/error.log"
        sleep 0.2
    done
    db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
           CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    if alive "$ROOT/run/slurmdbd.pid"; then return; fi
    /usr/sbin/slurmdbd
    local deadline=$((SECONDS + WAIT_S))
    until sacctmgr -n list cluster >/dev/null 2>&1; do
        (( SECONDS < deadline )) || die "slurmdbd not answering after ${WAIT_S}s; see $ROOT/log/slurmdbd.log"
        sleep 0.2
    done
    # The cluster, an account and this user in it, before slurmctld registers (each only once).
    # (-P: parsable output; columns would otherwise cut names to 10 characters)
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >&2
    sacctmgr -n -P list account format=account | grep -qx xstilts || \
        sacctmgr -i add account xstilts cluster="$CLUSTER" description=tests organization=xstilts >&2
    sacctmgr -n -P list user format=user | grep -qx "$(id -un)" || \
        sacctmgr -i add user "$(id -un)" account=xstilts cluster="$CLUSTER" >&2
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
    if alive "$ROOT/run/slurmctld.pid" && alive "$ROOT/run/slurmd.pid" && alive "$MUNGE_PID" \
            && alive "$ROOT/run/slurmdbd.pid" && alive "$DB_PID"; then
        log "already running"
    else
        stop_slurm
        write_config
        # sacctmgr (below) finds the config at the default path, as the jobs' clients do.
        mkdir -p "$(dirname "$ETC_CONF")"
        ln -sfn "$CONF" "$ETC_CONF"
        start_munge
        start_mariadb
        start_slurmdbd
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
    stop_pidfile "$ROOT/run/slurmdbd.pid"
    stop_pidfile "$DB_PID"
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
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        pidfile=$ROOT/run/$name.pid
        [[ $name == munged ]] && pidfile=$MUNGE_PID
        [[ $name == mariadb ]] && pidfile=$DB_PID
        if alive "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"
        else echo "$name: stopped"; ok=1; fi
    done
    (( ok == 0 )) || return 1
    sinfo -N -o "%N %T %c %m %G"
    squeue
    sacct -X -a -o JobID,JobName%20,State,ExitCode | tail -n 5
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
