#!/usr/bin/env bash
# Exact resume: with the same ranks and threads, 2N steps straight and
# N steps + resume + N steps give bit-identical parameters, optimizer state,
# stream state and loss curve, for every cell type, with 1 and 2 ranks; the
# same after a SIGTERM / SIGUSR1 stop; and a checkpoint of 2 ranks resumes on 1.
#
#   bash tests/cli_resume.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_resume.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_resume.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_resume.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIEXEC=(mpiexec --oversubscribe)

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

# "step loss grad_norm" of every train line of a metrics.jsonl, sorted by step
train_losses() {
    grep '"type":"train"' "$1" |
        sed -E 's/.*"step":([0-9]+),.*"loss":([^,]+),.*"grad_norm":([^,]+),.*/\1 \2 \3/' |
        sort -n -k1,1
}

# the "step" of a checkpoint, from charnn inspect --json
ckpt_step() {
    "$CHARNN" inspect "$1" --json 2>/dev/null | sed -nE 's/.*"step":([0-9]+),.*/\1/p'
}

# h5diff of the groups that must be bit-identical
same_groups() {
    local a=$1 b=$2 what=$3
    shift 3
    for g in "$@"; do
        if h5diff "$a" "$b" "$g" >"$WORK/h5diff.out" 2>&1; then
            ok "$what: $g identical"
        else
            notok "$what: $g differs ($(grep -c differences "$WORK/h5diff.out") datasets/attributes)"
            show "$WORK/h5diff.out"
        fi
    done
}

N=15
STEPS2=$((2 * N))

# ---- 1. straight vs split-and-resumed, every cell, 1 and 2 ranks ----------
for cell in rnn lstm gru; do
    for np in 1 2; do
        tag=$cell-np$np
        if [ "$np" = 1 ]; then launch=(); else launch=("${MPIEXEC[@]}" -np 2); fi
        flags=(--data "$DATA" --cell "$cell" --layers 2 --hidden 32 --seq 16 --batch 4
               --threads 1 --log-every 1 --eval-every 7 --dropout 0.1 --no-progress)
        A=$WORK/$tag-A
        B=$WORK/$tag-B
        run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --out "$A" --steps $STEPS2 \
            >"$A.log" 2>&1
        rc=$?
        check "$tag: straight $STEPS2-step run exits 0 (got $rc)" [ $rc = 0 ]
        [ $rc = 0 ] || show "$A.log"
        run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --out "$B" --steps $N \
            >"$B.log1" 2>&1
        rc=$?
        check "$tag: first $N steps exit 0 (got $rc) and write model.h5" \
            [ $rc = 0 -a -f "$B/model.h5" ]
        [ $rc = 0 ] || show "$B.log1"
        sb=$(ckpt_step "$B/model.h5")
        check "$tag: the $N-step model.h5 is at step $N ('$sb')" [ "$sb" = "$N" ]
        run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --out "$B" --steps $STEPS2 \
            --resume auto >"$B.log2" 2>&1
        rc=$?
        check "$tag: resumed run to step $STEPS2 exits 0 (got $rc)" [ $rc = 0 ]
        [ $rc = 0 ] || show "$B.log2"
        check "$tag: the resumed run says it resumed from $B/model.h5 at step $N" \
            grep -qF "resumed from '$B/model.h5' at step $N " "$B.log2"
        check "$tag: the resumed run did not re-derive the streams" \
            bash -c "! grep -q 're-derived' '$B.log2'"
        sa=$(ckpt_step "$A/model.h5")
        sb=$(ckpt_step "$B/model.h5")
        check "$tag: both model.h5 are at step $STEPS2 (straight: '$sa', resumed: '$sb')" \
            [ "$sa" = $STEPS2 -a "$sb" = $STEPS2 ]
        same_groups "$A/model.h5" "$B/model.h5" "$tag: straight vs resumed model.h5" \
            /model /optimizer /ranks
        train_losses "$A/metrics.jsonl" >"$A.losses"
        train_losses "$B/metrics.jsonl" >"$B.losses"
        expect=$(seq 1 $STEPS2 | tr '\n' ' ')
        check "$tag: straight run logged the loss of each step 1..$STEPS2 once" \
            [ "$(cut -d' ' -f1 "$A.losses" | tr '\n' ' ')" = "$expect" ]
        check "$tag: split run logged the loss of each step 1..$STEPS2 once" \
            [ "$(cut -d' ' -f1 "$B.losses" | tr '\n' ' ')" = "$expect" ]
        if cmp -s "$A.losses" "$B.losses"; then
            ok "$tag: per-step train loss and grad norm identical for steps 1..$STEPS2"
        else
            notok "$tag: per-step train loss or grad norm differ"
            diff "$A.losses" "$B.losses" | sed 's/^/#   /' | head -n 10
        fi
        # validation losses: the same steps and values (B also validated at the end of its first run)
        grep '"type":"val"' "$A/metrics.jsonl" |
            sed -E 's/.*"step":([0-9]+),"val_loss":([^,]+),.*/\1 \2/' | sort -n >"$A.val"
        grep '"type":"val"' "$B/metrics.jsonl" |
            sed -E 's/.*"step":([0-9]+),"val_loss":([^,]+),.*/\1 \2/' | sort -n |
            grep -v "^$N " >"$B.val"
        check "$tag: validation losses at steps 7 14 21 28 $STEPS2 identical" \
            bash -c "[ \"\$(cut -d' ' -f1 '$A.val' | tr '\n' ' ')\" = '7 14 21 28 $STEPS2 ' ] && cmp -s '$A.val' '$B.val'"
    done
done

# ---- 2. stopped by a signal, resumed, compared with a straight run -------
BIG=(--data "$DATA" --cell lstm --layers 2 --hidden 128 --seq 32 --batch 8 --threads 1
     --log-every 10 --eval-every 100 --eval-chunks 8 --dropout 0.1 --no-progress --steps 400)

# wait (up to 30 s) until a log shows the first training step, i.e. the
# signal handlers are in place
wait_for_training() {
    local log=$1 pid=$2 i
    for i in $(seq 1 300); do
        grep -q '^step ' "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

signal_test() {
    local np=$1 sig=$2
    local tag="signal-np$np"
    local launch=()
    [ "$np" = 1 ] || launch=("${MPIEXEC[@]}" -np "$np")
    local S=$WORK/$tag-straight R=$WORK/$tag-R
    run_limited 300 "${launch[@]}" "$CHARNN" train "${BIG[@]}" --out "$S" >"$S.log" 2>&1
    local rc=$?
    check "$tag: straight 400-step run exits 0 (got $rc)" [ $rc = 0 ]
    local delay stopped=0 try
    for try in 1 2 3; do
        case $try in 1) delay=1.5 ;; 2) delay=0.7 ;; 3) delay=0.2 ;; esac
        rm -rf "$R"
        "${launch[@]}" "$CHARNN" train "${BIG[@]}" --out "$R" >"$R.log1" 2>&1 &
        local pid=$!
        wait_for_training "$R.log1" "$pid"
        sleep $delay
        kill -s "$sig" "$pid" 2>/dev/null
        wait "$pid"
        rc=$?
        echo "# $tag try $try: SIG$sig after first step + ${delay}s -> exit $rc"
        if [ $rc = 0 ]; then
            continue # finished before the signal: try sooner
        fi
        stopped=1
        break
    done
    check "$tag: the run was interrupted by SIG$sig (exit $rc, want 75)" [ $stopped = 1 -a $rc = 75 ]
    [ $rc = 75 ] || show "$R.log1"
    local latest=
    [ -f "$R/latest" ] && latest=$(cat "$R/latest")
    check "$tag: latest names a ckpt-*.h5 ('$latest')" \
        bash -c "[[ '$latest' =~ ^ckpt-[0-9]{8}\.h5$ ]]"
    if "$CHARNN" inspect "$R/$latest" >/dev/null 2>"$WORK/inspect.err"; then
        ok "$tag: charnn inspect verifies $R/$latest"
    else
        notok "$tag: charnn inspect verifies $R/$latest: $(head -n 1 "$WORK/inspect.err")"
    fi
    local step
    step=$(ckpt_step "$R/$latest")
    check "$tag: the stop checkpoint is at step $step, 0 < step < 400" \
        [ "${step:-0}" -gt 0 -a "${step:-400}" -lt 400 ]
    check "$tag: the log says it checkpointed at step $step and stopped" \
        grep -q "checkpointing at step $step and stopping" "$R.log1"
    check "$tag: the stopped run wrote no model.h5" [ ! -e "$R/model.h5" ]
    run_limited 300 "${launch[@]}" "$CHARNN" train "${BIG[@]}" --out "$R" --resume auto \
        >"$R.log2" 2>&1
    rc=$?
    check "$tag: resume --resume auto runs to completion (exit $rc)" [ $rc = 0 ]
    [ $rc = 0 ] || show "$R.log2"
    check "$tag: it resumed from $latest at step $step" \
        grep -qF "resumed from '$R/$latest' at step $step " "$R.log2"
    same_groups "$S/model.h5" "$R/model.h5" "$tag: straight vs stopped+resumed" \
        /model /optimizer /ranks
}

signal_test 1 TERM
signal_test 2 USR1

# ---- 3. a 2-rank checkpoint resumed with 1 rank --------------------------
X=$WORK/cross
cp -r "$WORK/lstm-np2-B" "$X"
run_limited 120 "$CHARNN" train --data "$DATA" --cell lstm --layers 2 --hidden 32 --seq 16 \
    --batch 4 --threads 1 --log-every 1 --eval-every 7 --dropout 0.1 --no-progress \
    --out "$X" --steps $((STEPS2 + 10)) --resume auto >"$X.log" 2>&1
rc=$?
check "2 ranks -> 1 rank: resume exits 0 (got $rc)" [ $rc = 0 ]
[ $rc = 0 ] || show "$X.log"
check "2 ranks -> 1 rank: stdout says the data cursors were re-derived" grep -q "re-derived" "$X.log"
check "2 ranks -> 1 rank: stdout says carried states restart from zero" \
    grep -q "restart from zero" "$X.log"
sx=$(ckpt_step "$X/model.h5")
check "2 ranks -> 1 rank: model.h5 reaches step $((STEPS2 + 10)) ('$sx')" [ "$sx" = $((STEPS2 + 10)) ]
check "2 ranks -> 1 rank: model.h5 now records 1 rank" \
    bash -c "'$CHARNN' inspect '$X/model.h5' --json | grep -q '\"nranks\":1,'"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
