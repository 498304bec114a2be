#!/usr/bin/env bash
# tests/slurm/down.sh - stop the cluster started by tests/slurm/up.sh: cancel
# its jobs, then stop the daemons by the PIDs up.sh recorded in
# $CHARNN_SLURM_DIR/pids (default /var/tmp/charnn-slurm), never by name.
# Exit 0 when every recorded daemon is gone.
set -uo pipefail
DIR=${CHARNN_SLURM_DIR:-/var/tmp/charnn-slurm}
export SLURM_CONF=$DIR/slurm.conf
rc=0
say() { echo "[slurm down] $*"; }

# alive NAME: the recorded pid still runs and is still NAME (guards against pid reuse)
alive() {
    local f=$DIR/pids/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# 1. cancel what is left, so that job processes end cleanly with their slurmstepd
if alive slurmctld && timeout 10 scontrol ping 2>/dev/null | grep -q UP; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for _ in $(seq 1 150); do # up to 30 s
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

# stop NAME...: SIGTERM each recorded daemon, wait up to 15 s, then SIGKILL
stop() {
    local name pid live=() np still
    for name in "$@"; do
        if ! alive "$name"; then
            [ -s "$DIR/pids/$name.pid" ] && say "$name ($(cat "$DIR/pids/$name.pid")) is not running"
            rm -f "$DIR/pids/$name.pid"
            continue
        fi
        pid=$(cat "$DIR/pids/$name.pid")
        kill -TERM "$pid" && live+=("$name:$pid")
    done
    for _ in $(seq 1 75); do
        still=()
        for np in "${live[@]}"; do kill -0 "${np#*:}" 2>/dev/null && still+=("$np"); done
        [ ${#still[@]} = 0 ] && break
        sleep 0.2
    done
    for np in "${live[@]}"; do
        name=${np%%:*}
        pid=${np#*:}
        if kill -0 "$pid" 2>/dev/null; then
            say "$name ($pid) ignored SIGTERM for 15 s: SIGKILL"
            kill -KILL "$pid"
            sleep 0.5
        fi
        if kill -0 "$pid" 2>/dev/null; then
            say "$name ($pid) is still alive"
            rc=1
        else
            say "stopped $name ($pid)"
            rm -f "$DIR/pids/$name.pid"
        fi
    done
}

stop slurmd slurmctld
stop munged
exit $rc
