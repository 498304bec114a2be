#!/usr/bin/env bash
# Early stopping: --patience N stops at the validation where N validations in a
# row have not beaten the best one, with exit 0, the message, model.h5 at that
# step and best.h5 at the best one; --lr-on-plateau F cuts the rate at those
# validations instead, down to --min-lr, then stops. The expected steps, rates
# and best losses are computed here from metrics.jsonl's validation records,
# not taken from the counters under test. A run resumed from a checkpoint in
# the middle (counters and rate factor half-way) ends bit-identical to the
# uninterrupted one; with 2 ranks the run stops where its records say. And
# the flags' usage errors, by exact text.
#
#   bash tests/cli_early_stop.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_early_stop.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_early_stop.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_early_stop.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

ckpt_field() { # FILE FIELD: a number from charnn inspect --json
    "$CHARNN" inspect "$1" --json 2>/dev/null | sed -nE "s/.*\"$2\":([-0-9.e+]+).*/\1/p"
}

# "step val_loss" of the validations in a metrics file, in order
vals() { grep '"type":"val"' "$1" | sed -E 's/.*"step":([0-9]+),"val_loss":([^,]+),.*/\1 \2/'; }

# A high rate on a small GRU: the validation loss stops improving within a
# few hundred steps. A validation every 5 steps.
FLAGS=(--data "$DATA" --cell gru --layers 1 --hidden 32 --seq 16 --batch 4 --threads 1
       --lr 0.05 --eval-every 5 --eval-chunks 4 --log-every 5 --steps 400 --no-progress)

# ---- 1. --patience: stops where the validation records say ---------------
P=3
A=$WORK/patience
run_limited 120 "$CHARNN" train "${FLAGS[@]}" --patience $P --out "$A" >"$A.log" 2>&1
rc=$?
check "--patience $P: exit 0 (got $rc)" [ $rc = 0 ]
[ $rc = 0 ] || show "$A.log"
# expected from the validation records: the first validation that is the P-th
# in a row not below the best so far
read -r want_step want_best want_best_step < <(vals "$A/metrics.jsonl" | awk -v P=$P '
    NR == 1 || $2 < best { best = $2; bstep = $1; n = 0; next }
    { if (++n == P) { print $1, best, bstep; exit } }')
check "--patience $P: the validation records show a stop before step 400 (at '${want_step:-none}')" \
    [ -n "${want_step:-}" ]
if [ -n "${want_step:-}" ]; then
    best4=$(printf '%.4f' "$want_best")
    check "--patience $P: the message names the stop, the best loss $best4 and its step $want_best_step" \
        grep -qxF "charnn: no better validation loss in $P validations (best $best4 at step $want_best_step): stopping" "$A.log"
    last_val=$(vals "$A/metrics.jsonl" | tail -n 1 | cut -d' ' -f1)
    check "--patience $P: no validation after step $want_step (last at $last_val)" [ "$last_val" = "$want_step" ]
    last_train=$(grep '"type":"train"' "$A/metrics.jsonl" | tail -n 1 | sed -E 's/.*"step":([0-9]+),.*/\1/')
    check "--patience $P: no training step after $want_step (last logged $last_train)" [ "$last_train" = "$want_step" ]
    check "--patience $P: a stop record at step $want_step" \
        grep -q "\"type\":\"stop\",\"step\":$want_step,\"reason\":\"patience\"" "$A/metrics.jsonl"
    check "--patience $P: model.h5 is at step $want_step" [ "$(ckpt_field "$A/model.h5" step)" = "$want_step" ]
    check "--patience $P: best.h5 is at the best step $want_best_step" \
        [ "$(ckpt_field "$A/best.h5" step)" = "$want_best_step" ]
    bb=$(ckpt_field "$A/best.h5" best_val_loss)
    check "--patience $P: best.h5's best loss $bb is the records' $want_best" \
        awk -v a="$bb" -v b="$want_best" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6) }'
    check "--patience $P: done line at step $want_step" grep -q "^done: step $want_step," "$A.log"
    # resuming a run that stopped early trains nothing
    run_limited 60 "$CHARNN" train "${FLAGS[@]}" --patience $P --out "$A" --resume auto >"$A.log2" 2>&1
    rc=$?
    check "--patience $P: resuming the stopped run exits 0 (got $rc) and trains nothing" \
        bash -c "[ $rc = 0 ] && grep -q 'already stopped early at step $want_step' '$A.log2'"
fi

# ---- 1b. the same with 2 ranks: every rank stops at the same validation ----
A2=$WORK/patience-np2
run_limited 180 mpiexec --oversubscribe -np 2 "$CHARNN" train "${FLAGS[@]}" --patience 3 \
    --out "$A2" >"$A2.log" 2>&1
rc=$?
check "2 ranks, --patience 3: exit 0 (got $rc)" [ $rc = 0 ]
[ $rc = 0 ] || show "$A2.log"
read -r want2 _ < <(vals "$A2/metrics.jsonl" | awk '
    NR == 1 || $2 < best { best = $2; n = 0; next }
    { if (++n == 3) { print $1; exit } }')
check "2 ranks, --patience 3: model.h5 at the step the records give (${want2:-none})" \
    [ -n "${want2:-}" -a "$(ckpt_field "$A2/model.h5" step)" = "${want2:-x}" ]

# ---- 2. --lr-on-plateau: cuts at the right validations, then stops ---------
P=2 F=0.5 LR=0.05 MIN=0.01
B=$WORK/plateau
PFLAGS=(--patience $P --lr-on-plateau $F --min-lr $MIN --checkpoint-every 5 --keep-last 0)
run_limited 120 "$CHARNN" train "${FLAGS[@]}" "${PFLAGS[@]}" --out "$B" >"$B.log" 2>&1
rc=$?
check "--lr-on-plateau: exit 0 (got $rc)" [ $rc = 0 ]
[ $rc = 0 ] || show "$B.log"
# expected cuts and stop: at the P-th validation in a row without improvement
# the base rate becomes max(rate x F, MIN); when it already is MIN, stop
vals "$B/metrics.jsonl" | awk -v P=$P -v F=$F -v LR=$LR -v MIN=$MIN '
    BEGIN { rate = LR }
    NR == 1 || $2 < best { best = $2; n = 0; next }
    ++n == P {
        if (rate <= MIN * (1 + 1e-6)) { print "stop", $1; exit }
        rate = rate * F; if (rate < MIN) rate = MIN; n = 0
        printf "cut %s %.6g\n", $1, rate
    }' >"$B.expect"
grep -E '"type":"(plateau|stop)"' "$B/metrics.jsonl" |
    sed -E 's/.*"type":"plateau","step":([0-9]+),.*"base_lr":([^}]+)}/cut \1 \2/;
            s/.*"type":"stop","step":([0-9]+),.*/stop \1/' >"$B.got"
ncut=$(grep -c '^cut' "$B.expect")
check "--lr-on-plateau: at least 2 cuts and a stop expected from the records ($ncut cuts)" \
    bash -c "[ $ncut -ge 2 ] && grep -q '^stop' '$B.expect'"
if cmp -s "$B.expect" "$B.got"; then
    ok "--lr-on-plateau: cuts and stop at the steps and rates the validation records give"
else
    notok "--lr-on-plateau: cuts or stop differ (expected, got)"
    paste "$B.expect" "$B.got" | show
fi
# the rate each logged step trained with: LR until the first cut, then each cut's
awk -v LR=$LR '
    FNR == NR { if ($1 == "cut") { at[++k] = $2; r[k] = $3 } next }
    /"type":"train"/ {
        match($0, /"step":[0-9]+/); s = substr($0, RSTART + 7, RLENGTH - 7) + 0
        match($0, /"lr":[^,]+/); lr = substr($0, RSTART + 5, RLENGTH - 5) + 0
        want = LR; for (i = 1; i <= k; i++) if (s > at[i]) want = r[i]
        if (lr < want * (1 - 1e-5) || lr > want * (1 + 1e-5)) { print "step " s ": lr " lr ", want " want; bad = 1 }
    }
    END { exit bad }' "$B.expect" "$B/metrics.jsonl" >"$B.lr"
check "--lr-on-plateau: every logged step trained at the rate of the cuts before it" [ ! -s "$B.lr" ]
[ -s "$B.lr" ] && show "$B.lr"

# ---- 3. resumed from the middle: bit-identical to the uninterrupted run ------
# the checkpoint one validation before the second cut: the rate factor is cut
# once and the count stands at P - 1, so a resume that lost either would cut
# at another step or to another rate
stop_step=$(sed -n 's/^stop //p' "$B.expect")
first_cut=$(sed -n '1s/^cut \([0-9]*\) .*/\1/p' "$B.expect")
second_cut=$(sed -n '2s/^cut \([0-9]*\) .*/\1/p' "$B.expect")
mid=$((${second_cut:-5} - 5))
mid_ckpt=$(printf '%s/ckpt-%08d.h5' "$B" "${mid:-0}")
check "resume: a checkpoint after the first cut (step ${first_cut:-?}), before the second (step $mid)" \
    [ -n "${second_cut:-}" -a -f "$mid_ckpt" ]
if [ -n "${second_cut:-}" ] && [ -f "$mid_ckpt" ]; then
    check "resume: that checkpoint holds a cut rate factor and a count under way" \
        bash -c "h5dump -a /lr_factor '$mid_ckpt' | grep -q '0\\.5' && h5dump -a /evals_since_best '$mid_ckpt' | grep -qE '\\(0\\): $((P - 1))\$'"
    C=$WORK/resumed
    run_limited 120 "$CHARNN" train "${FLAGS[@]}" "${PFLAGS[@]}" --out "$C" --resume "$mid_ckpt" \
        >"$C.log" 2>&1
    rc=$?
    check "resume: from step $mid exits 0 (got $rc)" [ $rc = 0 ]
    [ $rc = 0 ] || show "$C.log"
    check "resume: stops at step $stop_step as the uninterrupted run" \
        [ "$(ckpt_field "$C/model.h5" step)" = "$stop_step" ]
    for g in /model /optimizer /ranks; do
        if h5diff "$B/model.h5" "$C/model.h5" "$g" >"$WORK/h5diff.out" 2>&1; then
            ok "resume: model.h5 $g identical to the uninterrupted run's"
        else
            notok "resume: model.h5 $g differs"
            show "$WORK/h5diff.out"
        fi
    done
    for a in best_val_loss best_step evals_since_best lr_factor; do
        x=$(h5dump -a "/$a" "$B/model.h5" | grep '(0)')
        y=$(h5dump -a "/$a" "$C/model.h5" | grep '(0)')
        check "resume: model.h5 attribute $a identical ($x)" [ -n "$x" -a "$x" = "$y" ]
    done
    grep -E '"type":"(train|val|plateau|stop)"' "$B/metrics.jsonl" |
        sed -E 's/,"(chars_per_s|time|elapsed)":[^,}]+//g' |
        awk -v m="$mid" '{ match($0, /"step":[0-9]+/); if (substr($0, RSTART + 7, RLENGTH - 7) + 0 > m) print }' >"$B.tail"
    grep -E '"type":"(train|val|plateau|stop)"' "$C/metrics.jsonl" |
        sed -E 's/,"(chars_per_s|time|elapsed)":[^,}]+//g' >"$C.tail"
    check "resume: losses, rates, cuts and the stop after step $mid identical ($(wc -l <"$C.tail") records)" \
        cmp -s "$B.tail" "$C.tail"
fi

# ---- 4. usage errors ------------------------------------------------------
usage() { # DESCRIPTION EXPECTED-LINE FLAGS...
    local what=$1 want=$2
    shift 2
    "$CHARNN" train --data "$DATA" --out "$WORK/usage" "$@" >"$WORK/usage.out" 2>&1
    local rc=$?
    check "$what: exit 2 (got $rc)" [ $rc = 2 ]
    check "$what: says '$want'" grep -qxF "$want" "$WORK/usage.out"
}
usage "--lr-on-plateau without --patience" \
    "charnn train: --lr-on-plateau needs --patience N: the validations without improvement before each cut" \
    --lr-on-plateau 0.5 --min-lr 0.001
usage "--lr-on-plateau 1" "charnn train: bad value '1' for --lr-on-plateau: must be above 0 and below 1" \
    --patience 2 --lr-on-plateau 1 --min-lr 0.001
usage "--lr-on-plateau without --min-lr" \
    "charnn train: --lr-on-plateau needs --min-lr above 0 and below --lr: the rate where the cuts end and --patience stops the run" \
    --patience 2 --lr-on-plateau 0.5
usage "--patience -1" "charnn train: bad value '-1' for --patience: must be between 0 and 1000000000" \
    --patience -1

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
