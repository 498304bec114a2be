#!/usr/bin/env bash
# Checkpoint atomicity and bad checkpoints: kill -9 at random moments never
# leaves a checkpoint that fails to verify; --resume of a missing, truncated,
# bit-flipped, non-HDF5 or incompatible file fails with one line naming it and
# touches nothing; --resume auto falls back past a damaged newest checkpoint;
# a second SIGINT exits at once; --keep-last prunes.
#
#   bash tests/cli_ckpt_faults.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_ckpt_faults.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_ckpt_faults.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_ckpt_faults.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"
verifies() { "$CHARNN" inspect "$1" >/dev/null 2>&1; }
ckpt_step() {
    "$CHARNN" inspect "$1" --json 2>/dev/null | sed -nE 's/.*"step":([0-9]+),.*/\1/p'
}
# names, sizes, mtimes (ns) and md5sums of everything in a directory but the
# run lock, which names whichever run took it last (cli_io_faults.sh tests it)
snapshot() {
    (cd "$1" && ls -la --time-style=+%s.%N | grep -v -e ' \.\.$' -e ' \.charnn\.lock$' &&
        find . -type f ! -name .charnn.lock -print0 | sort -z | xargs -0 -r md5sum)
}
# flip every bit of the byte at offset $2 of file $1
flip_byte() {
    local f=$1 off=$2 b
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' \n')
    printf "$(printf '\\%03o' $((b ^ 0xff)))" |
        dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}
file_size() { stat -c %s "$1"; }

SMALL=(--data "$DATA" --layers 2 --hidden 32 --seq 16 --batch 4 --threads 1 --log-every 5
       --eval-every 5 --eval-chunks 4 --no-progress)

# ---- 1. kill -9 at random moments ------------------------------------------
K=$WORK/killed
KILLS=12
SEED=${CHARNN_FAULTS_SEED:-$$}  # set CHARNN_FAULTS_SEED to replay the same kill delays
RANDOM=$SEED
echo "# kill delays from seed $SEED"
big=(--data "$DATA" --cell lstm --hidden 256 --layers 2 --seq 16 --batch 4 --threads 1
     --checkpoint-every 1 --keep-last 2 --eval-every 0 --eval-chunks 4 --log-every 10 --no-progress
     --steps 100000 --resume auto)
mkdir -p "$K"
prev_step=0
seen_ckpt=0
fail_before=$FAIL
tmp_left=0
for i in $(seq 1 $KILLS); do
    ms=$((300 + RANDOM % 1701))
    delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    "$CHARNN" train "${big[@]}" --out "$K" >"$K.log$i" 2>"$K.err$i" &
    pid=$!
    # the random moment counts from the end of start-up (the header's last
    # line), so that a loaded machine still gets kills inside the training loop
    for _ in $(seq 1 300); do
        grep -q '^optimizer ' "$K.log$i" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    if [ $rc = 137 -o $rc = 0 ]; then
        ok "kill $i (${delay}s after start-up): the resumed run was running or done (exit $rc)"
    else
        notok "kill $i (${delay}s after start-up): --resume auto failed with exit $rc"
        show "$K.err$i"
    fi
    if grep -q 'skipping damaged' "$K.err$i"; then
        notok "kill $i: --resume auto met a damaged checkpoint left by an earlier kill"
        show "$K.err$i"
    fi
    ls "$K"/*.tmp.* >/dev/null 2>&1 && tmp_left=$((tmp_left + 1))
    # every ckpt-*.h5 present verifies (inspect's output kept for latest below)
    rm -rf "$WORK/insp"
    mkdir -p "$WORK/insp"
    bad=
    n=0
    for f in "$K"/ckpt-*.h5; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        "$CHARNN" inspect "$f" --json >"$WORK/insp/${f##*/}" 2>"$WORK/insp/${f##*/}.err" ||
            { bad="$bad ${f##*/}"; rm -f "$WORK/insp/${f##*/}"; }
    done
    check "kill $i: all $n ckpt-*.h5 present verify${bad:+ (bad:$bad)}" [ -z "$bad" ]
    check "kill $i: at most --keep-last 2 (+1 being superseded) ckpt-*.h5 present ($n)" [ $n -le 3 ]
    # --resume auto takes the highest step that verifies; a kill between a
    # checkpoint's rename and the update of `latest` leaves it one ahead
    top_step=0
    for f in "$WORK"/insp/ckpt-*.h5; do
        [ -f "$f" ] || continue
        s=$(sed -nE 's/.*"step":([0-9]+),.*/\1/p' "$f")
        [ "${s:-0}" -gt $top_step ] && top_step=$s
    done
    if [ -e "$K/latest" ]; then
        seen_ckpt=1
        name=$(cat "$K/latest")
        if [ ! -e "$WORK/insp/$name.err" ]; then
            "$CHARNN" inspect "$K/$name" --json >"$WORK/insp/$name" 2>"$WORK/insp/$name.err" ||
                rm -f "$WORK/insp/$name"
        fi
        if [[ "$name" == *.tmp.* ]]; then
            notok "kill $i: latest names a temporary file '$name'"
        elif [ -f "$WORK/insp/$name" ]; then
            step=$(sed -nE 's/.*"step":([0-9]+),.*/\1/p' "$WORK/insp/$name")
            ok "kill $i: latest names '$name' (step $step) and it verifies"
            check "kill $i: the step in latest never goes back ($prev_step -> $step)" \
                [ "${step:-0}" -ge $prev_step ]
            prev_step=${step:-0}
        else
            notok "kill $i: latest names '$name', which fails to verify: $(head -n 1 "$WORK/insp/$name.err")"
        fi
    elif [ $seen_ckpt = 1 ] || [ -n "$(ls "$K" | grep -E '^ckpt-[0-9]+\.h5$')" ]; then
        notok "kill $i: DIR/latest is missing although a checkpoint was written"
    else
        echo "# kill $i: no checkpoint written yet"
    fi
done
echo "# $tmp_left of $KILLS kills left a temporary *.tmp.* file behind"
check "kill -9 series: training progressed across the restarts (latest at step $prev_step)" \
    [ $prev_step -ge 3 ]
# a last resume from whatever the kills left runs a few more steps to completion
run_limited 120 "$CHARNN" train "${big[@]}" --steps $((prev_step + 3)) --out "$K" \
    >"$K.logfinal" 2>"$K.errfinal"
rc=$?
check "kill -9 series: a final --resume auto completes (exit $rc)" [ $rc = 0 ]
check "kill -9 series: it resumed at the highest verified step, $top_step (latest: $prev_step)" \
    grep -q "resumed from '$K/.*' at step $top_step " "$K.logfinal"
# the checkpoints are 10 MB each: keep them only when something failed
[ "$FAIL" = "$fail_before" ] && rm -rf "$K"

echo "# ${SECONDS}s elapsed"
# ---- 2. --resume of bad files ---------------------------------------------
R=$WORK/run
run_limited 120 "$CHARNN" train "${SMALL[@]}" --cell lstm --steps 10 --checkpoint-every 5 \
    --out "$R" >"$R.log" 2>&1
rc=$?
check "setup: a 10-step lstm run for the bad-resume cases exits 0 (got $rc)" [ $rc = 0 ]
GOOD=$R/model.h5
BAD=$WORK/bad
mkdir -p "$BAD"

# resume_fails NAME FILE EXTRA_GREP... [-- train flags]: exit 1, one stderr line
# naming FILE (plus every EXTRA string), run directory unchanged
resume_fails() {
    local name=$1 file=$2
    shift 2
    local greps=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        greps+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    snapshot "$R" >"$WORK/snap.before"
    run_limited 60 "$CHARNN" train "${SMALL[@]}" --steps 20 --out "$R" --resume "$file" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err"
    local rc=$?
    snapshot "$R" >"$WORK/snap.after"
    check "--resume $name: exit 1 (got $rc)" [ $rc = 1 ]
    local lines
    lines=$(wc -l <"$WORK/$name.err")
    check "--resume $name: exactly one line on stderr (got $lines)" [ "$lines" = 1 ]
    echo "#   stderr: $(head -n 1 "$WORK/$name.err")"
    check "--resume $name: the message names '$file'" grep -qF "$file" "$WORK/$name.err"
    local g
    for g in "${greps[@]}"; do
        check "--resume $name: the message says '$g'" grep -qF -- "$g" "$WORK/$name.err"
    done
    if cmp -s "$WORK/snap.before" "$WORK/snap.after"; then
        ok "--resume $name: the run directory is unchanged"
    else
        notok "--resume $name: the run directory changed"
        diff "$WORK/snap.before" "$WORK/snap.after" | sed 's/^/#   /' | head -n 10
    fi
}

resume_fails missing "$BAD/no-such.h5" "No such file"

cp "$GOOD" "$BAD/truncated.h5"
truncate -s $(($(file_size "$GOOD") / 2)) "$BAD/truncated.h5"
resume_fails truncated "$BAD/truncated.h5" "damaged"

# bit flips: try offsets around 60% (the optimizer state) until one is
# detected; a flip inspect does not detect must not have changed any dataset
size=$(file_size "$GOOD")
# flip_case PCT: copy GOOD, flip the byte at PCT% -> "detected", "same" or "CHANGED"
flip_case() {
    local f=$BAD/flip$1.h5
    cp "$GOOD" "$f"
    flip_byte "$f" $((size * $1 / 100))
    if verifies "$f"; then
        local g
        for g in /model /optimizer /ranks /vocab; do
            h5diff "$GOOD" "$f" $g >/dev/null 2>&1 || { echo CHANGED; return; }
        done
        echo same
    else
        echo detected
    fi
}
detected=
for pct in 60 50 70 40 80 55 65 45 75 35 85 30 90; do
    r=$(flip_case $pct)
    echo "# flip at $pct% (offset $((size * pct / 100))): $r"
    [ "$r" = CHANGED ] && notok "a byte flipped at $pct% passes inspect but changed the stored data"
    if [ "$r" = detected ]; then
        detected=$BAD/flip$pct.h5
        break
    fi
done
check "a byte flipped in the middle of a checkpoint is detected by inspect" [ -n "$detected" ]
[ -n "$detected" ] && resume_fails bit-flipped "$detected" "damaged"
# the same for a flip in the weights (/model is stored before /optimizer)
detected=
for pct in 5 10 3 15 20 8; do
    r=$(flip_case $pct)
    echo "# flip at $pct% (offset $((size * pct / 100))): $r"
    [ "$r" = CHANGED ] && notok "a byte flipped at $pct% passes inspect but changed the stored data"
    if [ "$r" = detected ]; then
        detected=$BAD/flip$pct.h5
        break
    fi
done
check "a byte flipped in the weights is detected by inspect" [ -n "$detected" ]
[ -n "$detected" ] && resume_fails bit-flipped-weights "$detected" "damaged"

echo "# ${SECONDS}s elapsed"
# a sweep of flips over the whole file: inspect either verifies (and then no
# stored value changed) or exits 1 with one line on stderr naming the file
sweep_bad=
sweep_changed=
n_det=0
n_same=0
for off in 9 24 64 160 400 1000 2000 4500 7000 $(seq $((size / 5)) $((size / 5)) $((size - 1))) $((size - 64)) $((size - 8)); do
    f=$BAD/sweep.h5
    cp "$GOOD" "$f"
    flip_byte "$f" "$off"
    "$CHARNN" inspect "$f" >/dev/null 2>"$WORK/sweep.err"
    rc=$?
    if [ $rc = 0 ]; then
        n_same=$((n_same + 1))
        for g in /model /optimizer /ranks /vocab; do
            h5diff "$GOOD" "$f" $g >/dev/null 2>&1 || { sweep_changed="$sweep_changed $off"; break; }
        done
    else
        n_det=$((n_det + 1))
        if [ $rc != 1 ] || [ "$(wc -l <"$WORK/sweep.err")" != 1 ] || ! grep -qF "'$f'" "$WORK/sweep.err"; then
            sweep_bad="$sweep_bad $off"
            echo "# flip at offset $off: inspect exit $rc, stderr:"
            cut -c1-160 "$WORK/sweep.err" | sed 's/^/#   /' | head -n 4
        fi
    fi
done
echo "# flip sweep: $n_det detected, $n_same not detected (bytes unused or not data)"
check "flip sweep: every detected flip gives exit 1 and one stderr line naming the file${sweep_bad:+ (not at offsets:$sweep_bad)}" \
    [ -z "$sweep_bad" ]
check "flip sweep: no undetected flip changed the stored data${sweep_changed:+ (changed at:$sweep_changed)}" \
    [ -z "$sweep_changed" ]

printf 'this is not a checkpoint\njust text\n' >"$BAD/text.h5"
resume_fails text-file "$BAD/text.h5" "not a charnn checkpoint"

resume_fails incompatible-cell "$GOOD" "cell lstm" "--cell gru" -- --cell gru --hidden 48
resume_fails incompatible-hidden "$GOOD" "hidden size 32" "--hidden 48" -- --cell lstm --hidden 48
resume_fails incompatible-layers "$GOOD" "2 layers" "--layers 3" -- --layers 3

echo "# ${SECONDS}s elapsed"
# ---- 3. --resume auto fallback and fresh start ------------------------------
F=$WORK/fallback
run_limited 120 "$CHARNN" train "${SMALL[@]}" --cell gru --steps 15 --checkpoint-every 5 \
    --keep-last 0 --out "$F" >"$F.log" 2>&1
rc=$?
check "setup: a 15-step gru run with checkpoints at 5, 10 exits 0 (got $rc)" \
    [ $rc = 0 -a -f "$F/ckpt-00000005.h5" -a -f "$F/ckpt-00000010.h5" -a "$(cat "$F/latest" 2>/dev/null)" = model.h5 ]

F1=$WORK/fallback1
cp -a "$F" "$F1"
truncate -s $(($(file_size "$F1/model.h5") * 2 / 3)) "$F1/model.h5"
run_limited 120 "$CHARNN" train "${SMALL[@]}" --steps 20 --out "$F1" --resume auto \
    >"$F1.out" 2>"$F1.err"
rc=$?
check "newest damaged: --resume auto exits 0 (got $rc)" [ $rc = 0 ]
check "newest damaged: stderr says 'skipping damaged checkpoint' and names model.h5" \
    grep -qF "skipping damaged checkpoint '$F1/model.h5'" "$F1.err"
check "newest damaged: it resumed from ckpt-00000010.h5 at step 10" \
    grep -qF "resumed from '$F1/ckpt-00000010.h5' at step 10 " "$F1.out"
st=$(ckpt_step "$F1/model.h5")
check "newest damaged: the new model.h5 verifies at step 20 ('$st')" [ "$st" = 20 ]

F2=$WORK/fallback2
cp -a "$F" "$F2"
truncate -s $(($(file_size "$F2/model.h5") / 3)) "$F2/model.h5"
printf 'garbage' >"$F2/ckpt-00000010.h5"
run_limited 120 "$CHARNN" train "${SMALL[@]}" --steps 20 --out "$F2" --resume auto \
    >"$F2.out" 2>"$F2.err"
rc=$?
check "two newest damaged: --resume auto exits 0 (got $rc)" [ $rc = 0 ]
check "two newest damaged: stderr warns about model.h5 and ckpt-00000010.h5" \
    bash -c "grep -qF \"skipping damaged checkpoint '$F2/model.h5'\" '$F2.err' &&
             grep -qF \"skipping damaged checkpoint '$F2/ckpt-00000010.h5'\" '$F2.err'"
check "two newest damaged: it resumed from ckpt-00000005.h5 at step 5" \
    grep -qF "resumed from '$F2/ckpt-00000005.h5' at step 5 " "$F2.out"

F3=$WORK/fresh
run_limited 120 "$CHARNN" train "${SMALL[@]}" --steps 5 --out "$F3" --resume auto \
    >"$F3.out" 2>"$F3.err"
rc=$?
check "no checkpoint (no directory): --resume auto exits 0 (got $rc)" [ $rc = 0 ]
check "no checkpoint (no directory): it says 'starting fresh'" \
    bash -c "cat '$F3.out' '$F3.err' | grep -q 'starting fresh'"
st=$(ckpt_step "$F3/model.h5")
check "no checkpoint (no directory): model.h5 is at step 5 ('$st')" [ "$st" = 5 ]
F4=$WORK/fresh-empty
mkdir -p "$F4"
run_limited 120 "$CHARNN" train "${SMALL[@]}" --steps 5 --out "$F4" --resume auto \
    >"$F4.out" 2>"$F4.err"
rc=$?
check "no checkpoint (empty directory): --resume auto exits 0 and says 'starting fresh'" \
    bash -c "[ $rc = 0 ] && cat '$F4.out' '$F4.err' | grep -q 'starting fresh'"

echo "# ${SECONDS}s elapsed"
# ---- 4. SIGINT twice ------------------------------------------------------
I=$WORK/sigint
"$CHARNN" train --data "$DATA" --cell lstm --hidden 256 --layers 2 --seq 64 --batch 32 \
    --threads 1 --steps 100000 --log-every 1 --eval-every 0 --no-progress --out "$I" \
    >"$I.out" 2>"$I.err" &
pid=$!
for _ in $(seq 1 300); do
    grep -q '^step ' "$I.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$pid"
sleep 0.02
kill -INT "$pid"
t0=$(date +%s.%N)
wait "$pid"
rc=$?
t1=$(date +%s.%N)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
check "SIGINT twice: exit 130 (got $rc)" [ $rc = 130 ]
check "SIGINT twice: exits within 2 s of the second (${elapsed}s)" \
    awk -v e="$elapsed" 'BEGIN { exit !(e < 2) }'
check "SIGINT twice: stderr says it is exiting now" grep -q "second interrupt" "$I.err"

echo "# ${SECONDS}s elapsed"
# ---- 5. --keep-last ---------------------------------------------------------
P=$WORK/keep
run_limited 120 "$CHARNN" train "${SMALL[@]}" --steps 30 --checkpoint-every 5 --keep-last 2 \
    --out "$P" >"$P.log" 2>&1
rc=$?
check "--keep-last 2: the 30-step run exits 0 (got $rc)" [ $rc = 0 ]
ckpts=$(cd "$P" && ls | grep -E '^ckpt-' | tr '\n' ' ')
check "--keep-last 2: exactly ckpt-00000020.h5 and ckpt-00000025.h5 remain ('$ckpts')" \
    [ "$ckpts" = "ckpt-00000020.h5 ckpt-00000025.h5 " ]
check "--keep-last 2: best.h5 and model.h5 exist and verify" \
    bash -c "'$CHARNN' inspect '$P/best.h5' >/dev/null && '$CHARNN' inspect '$P/model.h5' >/dev/null"
check "--keep-last 2: latest names model.h5" [ "$(cat "$P/latest" 2>/dev/null)" = model.h5 ]
others=$(cd "$P" && ls | grep -vxE 'ckpt-0000002[05]\.h5|best\.h5|model\.h5|latest|metrics\.jsonl' | tr '\n' ' ')
check "--keep-last 2: no other files left in the run directory ('$others')" [ -z "$others" ]

echo "# ${SECONDS}s elapsed"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
