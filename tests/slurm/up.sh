#!/usr/bin/env bash
# tests/slurm/up.sh - bring up a single-node Slurm (Debian 12's Slurm 22.05) on
# localhost for the job-script tests: munged, slurmctld and slurmd started
# directly (no systemd), as root. Stop it with tests/slurm/down.sh.
#
# Everything the fixture writes lives under $CHARNN_SLURM_DIR (default
# /var/tmp/charnn-slurm): slurm.conf, state, logs and the daemons' PIDs in
# pids/{munged,slurmctld,slurmd}.pid. /etc/slurm is not touched: clients find
# the configuration through SLURM_CONF, so use the cluster with
#
#   export SLURM_CONF=$CHARNN_SLURM_DIR/slurm.conf     (up.sh prints it)
#
# Environment (all optional):
#   CHARNN_SLURM_DIR          state directory (default /var/tmp/charnn-slurm)
#   CHARNN_SLURM_PORTS        "CTLD SLURMD" TCP ports (default "6817 6818")
#   CHARNN_SLURM_CRED_EXPIRE  AuthInfo cred_expire, which is also how long a
#                             requeued job waits before it starts again (default 10 s)
#   CHARNN_SLURM_MIN_JOB_AGE  seconds a finished job stays visible to scontrol (default 600)
#   CHARNN_SLURM_INSTALL=0    do not apt-get install missing packages (exit 3 if missing)
# Exit status: 0 up; 1 bring-up failed (whatever was started is stopped again);
# 2 not root; 3 packages missing and not installable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DIR=${CHARNN_SLURM_DIR:-/var/tmp/charnn-slurm}
read -r CTLD_PORT SLURMD_PORT <<<"${CHARNN_SLURM_PORTS:-6817 6818}"
NODE=localhost
CONF=$DIR/slurm.conf
T0=$(date +%s%N)

log() {
    local ms=$((($(date +%s%N) - T0) / 1000000))
    printf '[slurm up %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}
die() {
    log "ERROR: $*"
    local f
    for f in "$DIR"/log/*.log /var/log/munge/munged.log; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    if [ -n "${STARTED:-}" ]; then
        log "stopping what was started"
        CHARNN_SLURM_DIR=$DIR "$here/down.sh" || true
    fi
    exit 1
}
# record_pid NAME PIDFILE: the daemon wrote PIDFILE; check it is alive and is NAME
record_pid() {
    local pid
    pid=$(cat "$2")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || die "$1 (pid $pid from $2) is not running"
    echo "$pid" >"$DIR/pids/$1.pid"
}
# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
wait_for() {
    local end=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for: $what"
        sleep 0.2
    done
}

[ "$(id -u)" = 0 ] || { echo "tests/slurm/up.sh: must run as root" >&2; exit 2; }

for d in munged slurmctld slurmd; do
    f=$DIR/pids/$d.pid
    if [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null &&
        [ "$(cat "/proc/$(cat "$f")/comm" 2>/dev/null)" = "$d" ]; then
        die "$d from an earlier bring-up is still running (pid $(cat "$f")); run tests/slurm/down.sh first"
    fi
done

# ---------------------------------------------------------------- packages
pkgs=(munge slurmctld slurmd slurm-client)
missing() {
    local p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
    done
}
need=$(missing)
if [ -n "$need" ]; then
    [ "${CHARNN_SLURM_INSTALL:-1}" != 0 ] || { log "missing packages: $need"; exit 3; }
    log "apt-get install $need"
    export DEBIAN_FRONTEND=noninteractive
    # No systemd here: keep the maintainer scripts from starting the daemons via
    # /etc/init.d with a policy-rc.d that denies every start (101), if none exists.
    tmp_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    ok=1
    # shellcheck disable=SC2086 # $need: one word per package
    { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need; } \
        >"${TMPDIR:-/tmp}/charnn-slurm-apt.log" 2>&1 || ok=0
    [ -z "$tmp_policy" ] || rm -f /usr/sbin/policy-rc.d
    if [ $ok = 0 ] || [ -n "$(missing)" ]; then
        tail -n 5 "${TMPDIR:-/tmp}/charnn-slurm-apt.log" >&2
        log "could not install: $(missing)"
        exit 3
    fi
fi

mkdir -p "$DIR"/{pids,log,ctld,slurmd}
rm -rf "${DIR:?}"/ctld/* "$DIR"/slurmd/* "$DIR"/log/* "$DIR"/pids/* "$DIR"/*.pidfile
chmod 755 "$DIR"

# ---------------------------------------------------------------- munge
# The package's postinst creates /etc/munge/munge.key; make one if it did not.
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
# what systemd's RuntimeDirectory= and the unit would do
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then
    die "a munged not started by this fixture is running (socket /run/munge/munge.socket.2)"
fi
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then die "TCP port $port is in use"; fi
done
rm -f /run/munge/munged.pid
log "starting munged"
runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid ||
    die "munged failed (see /var/log/munge/munged.log)"
STARTED=1
wait_for 20 "munged pid file" test -s /run/munge/munged.pid
record_pid munged /run/munge/munged.pid
wait_for 20 "munge round trip" sh -c 'munge -n | unmunge'

# ---------------------------------------------------------------- slurm.conf
# The node as slurmd sees it (CPUs, sockets, cores, threads, memory); memory a
# little lower so that the node is never drained for "Low RealMemory".
HW=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]* //')
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
HW=$(sed -e "s/RealMemory=[0-9]*/RealMemory=$((MEM * 9 / 10))/" <<<"$HW")
cat >"$CONF" <<CONF
# written by charnn tests/slurm/up.sh: single-node Slurm on localhost for tests
ClusterName=charnnci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also the delay before a requeued job may start again (default 120 s)
AuthInfo=cred_expire=${CHARNN_SLURM_CRED_EXPIRE:-10}
MailProg=/bin/true
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pidfile
SlurmdPidFile=$DIR/slurmd.pidfile
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in a container: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# no sacct: one line per finished job (JobState, ExitCode, ...) here
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobRequeue=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=${CHARNN_SLURM_MIN_JOB_AGE:-600}
Waittime=0
NodeName=$NODE NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$CONF

# ---------------------------------------------------------------- daemons
log "starting slurmctld"
/usr/sbin/slurmctld -f "$CONF" || die "slurmctld failed to start"
wait_for 30 "slurmctld pid file" test -s "$DIR/slurmctld.pidfile"
record_pid slurmctld "$DIR/slurmctld.pidfile"
wait_for 30 "scontrol ping" sh -c 'scontrol ping | grep -q UP'

log "starting slurmd"
/usr/sbin/slurmd -f "$CONF" -N "$NODE" || die "slurmd failed to start"
wait_for 30 "slurmd pid file" test -s "$DIR/slurmd.pidfile"
record_pid slurmd "$DIR/slurmd.pidfile"
wait_for 60 "node $NODE idle" sh -c "sinfo -h -n '$NODE' -o %T | grep -qx idle"

log "up: munged $(cat "$DIR/pids/munged.pid"), slurmctld $(cat "$DIR/pids/slurmctld.pid"), slurmd $(cat "$DIR/pids/slurmd.pid"); export SLURM_CONF=$CONF"
