#!/usr/bin/env bash
# The time limit: with --time-limit (or the Slurm job's end: SLURM_JOB_END_TIME,
# else squeue) a run stops with a checkpoint before the limit and exits 75,
# with 1 and 2 ranks, and resuming that checkpoint ends bit-identical to an
# uninterrupted run. Durations parse in their documented forms and a bad one
# is a usage error; an end time that cannot be read is a warning, not a crash.
#
#   bash tests/cli_time_limit.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_time_limit.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_time_limit.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_time_limit.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# this test plays the Slurm job itself: none from outside
unset SLURM_JOB_END_TIME SLURM_JOB_ID
MPIEXEC=(mpiexec --oversubscribe)

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

ckpt_step() { "$CHARNN" inspect "$1" --json 2>/dev/null | sed -nE 's/.*"step":([0-9]+),.*/\1/p'; }
train_losses() {
    grep '"type":"train"' "$1" |
        sed -E 's/.*"step":([0-9]+),.*"loss":([^,]+),.*"grad_norm":([^,]+),.*/\1 \2 \3/' |
        sort -n -k1,1
}

# Steps of a few milliseconds (300 take a second on a quiet machine).
FLAGS=(--data "$DATA" --cell lstm --layers 2 --hidden 96 --seq 32 --batch 8 --threads 1
       --log-every 1 --eval-every 100 --eval-chunks 4 --dropout 0.1 --no-progress
       --checkpoint-every 0)

# ---- 1. stopped by --time-limit, resumed: the uninterrupted run's result ----
# 1 rank: a limit of 1.5 s with a fixed margin of 1 s stops within the first
# half second (the margin adds 2 x longest step + 2 x checkpoint write).
# 2 ranks: a limit already spent at the first step: rank 0 decides, both stop
# at step 1.
for np in 1 2; do
    if [ "$np" = 1 ]; then
        launch=() STEPS=300 LIMIT=1.5 HEAD='[01]'
    else
        launch=("${MPIEXEC[@]}" -np 2) STEPS=20 LIMIT=0.01 HEAD=0
    fi
    RUN=("${FLAGS[@]}" --steps $STEPS)
    A=$WORK/np$np-straight
    B=$WORK/np$np-limited
    run_limited 240 "${launch[@]}" "$CHARNN" train "${RUN[@]}" --out "$A" >"$A.log" 2>&1
    rc=$?
    check "np $np: uninterrupted $STEPS-step run exits 0 (got $rc)" [ $rc = 0 ]
    [ $rc = 0 ] || show "$A.log"
    run_limited 240 "${launch[@]}" "$CHARNN" train "${RUN[@]}" --out "$B" --time-limit $LIMIT \
        --time-margin 1 >"$B.log1" 2>&1
    rc=$?
    check "np $np: --time-limit $LIMIT exits 75 (got $rc)" [ $rc = 75 ]
    [ $rc = 75 ] || show "$B.log1"
    check "np $np: the header announces the limit" grep -qE "^time limit in $HEAD s: a checkpoint and exit 75 before it\$" "$B.log1"
    stop=$(sed -nE 's/.*"type":"stop","step":([0-9]+),"reason":"time_limit".*/\1/p' "$B/metrics.jsonl")
    check "np $np: a time_limit stop record before step $STEPS (at '${stop:-none}')" \
        bash -c "[ -n '$stop' ] && [ '${stop:-0}' -lt $STEPS ]"
    ck=$(printf '%s/ckpt-%08d.h5' "$B" "${stop:-0}")
    check "np $np: the stop wrote $ck, valid, at step ${stop:-?}" \
        bash -c "'$CHARNN' inspect '$ck' >/dev/null 2>&1 && [ \"\$('$CHARNN' inspect '$ck' --json | sed -nE 's/.*\"step\":([0-9]+),.*/\\1/p')\" = '${stop:-x}' ]"
    check "np $np: the log says why it stopped" \
        grep -qE "^time limit: -?[0-9]+ s left, margin [0-9]+ s: checkpointing at step ${stop:-x} and stopping$" "$B.log1"
    check "np $np: latest points at the stop's checkpoint" \
        bash -c "[ \"\$(cat '$B/latest' 2>/dev/null)\" = '$(basename "$ck")' ] || [ \"\$(readlink '$B/latest')\" = '$(basename "$ck")' ]"
    check "np $np: no model.h5 after a stop" [ ! -e "$B/model.h5" ]
    run_limited 240 "${launch[@]}" "$CHARNN" train "${RUN[@]}" --out "$B" --resume auto >"$B.log2" 2>&1
    rc=$?
    check "np $np: resumed run exits 0 (got $rc)" [ $rc = 0 ]
    [ $rc = 0 ] || show "$B.log2"
    check "np $np: both model.h5 at step $STEPS" \
        [ "$(ckpt_step "$A/model.h5")" = $STEPS -a "$(ckpt_step "$B/model.h5")" = $STEPS ]
    for g in /model /optimizer /ranks; do
        if h5diff "$A/model.h5" "$B/model.h5" "$g" >"$WORK/h5diff.out" 2>&1; then
            ok "np $np: stopped and resumed model.h5 $g identical to the uninterrupted run's"
        else
            notok "np $np: model.h5 $g differs"
            show "$WORK/h5diff.out"
        fi
    done
    [ "$np" = 2 ] && check "np 2: stopped at step 1" [ "${stop:-x}" = 1 ]
    train_losses "$A/metrics.jsonl" >"$A.losses"
    train_losses "$B/metrics.jsonl" >"$B.losses"
    check "np $np: per-step loss and gradient norm identical for steps 1..$STEPS ($(wc -l <"$B.losses") steps)" \
        bash -c "[ \$(wc -l <'$A.losses') = $STEPS ] && cmp -s '$A.losses' '$B.losses'"
done

# ---- 2. the Slurm job's end as the default limit --------------------------
# an end 2-3 s ahead (whole seconds) and a fixed margin of 2.9 s: a stop within
# the first steps, well before the 300 steps' end
QFLAGS=("${FLAGS[@]}" --steps 300 --time-margin 2.9)
mkdir -p "$WORK/bin"
# a squeue that records its arguments and prints $FAKE_END (its %e column)
cat >"$WORK/bin/squeue" <<'EOF'
#!/bin/sh
echo "$*" >>"$FAKE_SQUEUE_ARGS"
echo "$FAKE_END"
EOF
chmod +x "$WORK/bin/squeue"
export FAKE_SQUEUE_ARGS=$WORK/squeue.args

D=$WORK/env-end
SLURM_JOB_END_TIME=$(($(date +%s) + 3)) run_limited 120 "$CHARNN" train "${QFLAGS[@]}" --out "$D" \
    >"$D.log" 2>&1
rc=$?
check "SLURM_JOB_END_TIME 3 s ahead: exit 75 (got $rc) with a time_limit stop" \
    bash -c "[ $rc = 75 ] && grep -q '\"reason\":\"time_limit\"' '$D/metrics.jsonl'"
[ $rc = 75 ] || show "$D.log"

D=$WORK/squeue-end
FAKE_END=$(date -d "@$(($(date +%s) + 3))" +%Y-%m-%dT%H:%M:%S) SLURM_JOB_ID=4242 PATH=$WORK/bin:$PATH \
    run_limited 120 "$CHARNN" train "${QFLAGS[@]}" --out "$D" >"$D.log" 2>&1
rc=$?
check "squeue's end 3 s ahead: exit 75 (got $rc) with a time_limit stop" \
    bash -c "[ $rc = 75 ] && grep -q '\"reason\":\"time_limit\"' '$D/metrics.jsonl'"
[ $rc = 75 ] || show "$D.log"
check "squeue asked once, as 'squeue -h -j 4242 -o %e' ($(cat "$FAKE_SQUEUE_ARGS" 2>/dev/null))" \
    [ "$(cat "$FAKE_SQUEUE_ARGS" 2>/dev/null)" = "-h -j 4242 -o %e" ]

SHORT=(--data "$DATA" --cell gru --layers 1 --hidden 16 --seq 8 --batch 2 --threads 1
       --steps 5 --eval-every 0 --no-progress)
no_limit() { # DESCRIPTION EXPECTED-STDERR (empty: none)
    local what=$1 want=$2 rc
    rm -rf "$WORK/nolimit"
    "$CHARNN" train "${SHORT[@]}" --out "$WORK/nolimit" >"$WORK/nolimit.out" 2>"$WORK/nolimit.err"
    rc=$?
    check "$what: exit 0 (got $rc), no limit" \
        bash -c "[ $rc = 0 ] && ! grep -q 'time limit' '$WORK/nolimit.out'"
    if [ -z "$want" ]; then
        check "$what: nothing on stderr" [ ! -s "$WORK/nolimit.err" ]
    else
        check "$what: warns '$want'" grep -qxF "$want" "$WORK/nolimit.err"
    fi
    [ $rc = 0 ] || show "$WORK/nolimit.err"
}
no_limit "no Slurm job" ""
FAKE_END=N/A SLURM_JOB_ID=4242 PATH=$WORK/bin:$PATH no_limit "squeue says N/A (no end)" ""
SLURM_JOB_ID=4242 PATH=/nonexistent:$PATH no_limit "a job but no squeue" ""
SLURM_JOB_END_TIME=soon no_limit "SLURM_JOB_END_TIME=soon" \
    "charnn: warning: SLURM_JOB_END_TIME 'soon' is not a time in Unix seconds; training without a time limit"
FAKE_END=tomorrow SLURM_JOB_ID=4242 PATH=$WORK/bin:$PATH no_limit "squeue says 'tomorrow'" \
    "charnn: warning: cannot read the end time 'tomorrow' that squeue gives for job 4242; training without a time limit"

# ---- 3. durations ---------------------------------------------------------
for spec in "1h:3600" "2m30s:150" "1.5h:5400" "90:90" "1h2m3s:3723" "45m:2700"; do
    v=${spec%%:*} want=${spec##*:}
    "$CHARNN" train "${SHORT[@]}" --out "$WORK/dur" --time-limit "$v" >"$WORK/dur.out" 2>&1
    rc=$?
    got=$(sed -nE 's/^time limit in ([0-9]+) s: .*/\1/p' "$WORK/dur.out")
    check "--time-limit $v: exit 0 (got $rc), a limit of $want s (header: ${got:-none})" \
        bash -c "[ $rc = 0 ] && [ -n '$got' ] && [ '${got:-0}' -le $want ] && [ '${got:-0}' -ge $((want - 2)) ]"
done
for v in 3x 0 1m3h h 5s5s -5 1e3 ""; do
    "$CHARNN" train "${SHORT[@]}" --out "$WORK/dur" --time-limit "$v" >"$WORK/dur.out" 2>&1
    rc=$?
    check "--time-limit '$v': usage error (exit 2, got $rc) naming the value" \
        bash -c "[ $rc = 2 ] && grep -qxF \"charnn train: bad value '$v' for --time-limit: expected a duration above 0 such as 3h50m, 45m, 90s or 5400 (seconds)\" '$WORK/dur.out'"
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
