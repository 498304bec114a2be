#!/usr/bin/env bash
# Checkpoint format v1 (today's language models, written before tasks and
# heads) still loads and resumes: the fixture, a v1 checkpoint at step 4
# written by charnn 0.1.0 (tests/fixtures/README.md), resumed for steps 5-8
# gives exactly the losses of an uninterrupted 8-step run of this charnn, and
# `charnn inspect` reports it as format v1, task lm, head lm.
#
#   bash tests/cli_ckpt_v1.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_ckpt_v1.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_ckpt_v1.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_ckpt_v1.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PASS=0
FAIL=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
notok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else notok "$what"; fi
}

FIX=$SRC/tests/fixtures
V1=$WORK/v1_lstm_step4.h5
base64 -d "$FIX/v1_lstm_step4.h5.gz.b64" | gunzip >"$V1"
check "the fixture decodes to an HDF5 file" [ -s "$V1" ]

# the flags the fixture was made with (tests/fixtures/README.md)
FLAGS=(--data "$FIX/v1_text.txt" --cell lstm --layers 2 --hidden 16 --seq 12 --batch 4
       --steps 8 --checkpoint-every 4 --keep-last 0 --log-every 1 --eval-every 4 --seed 5
       --threads 1 --no-progress)

# ---- inspect ----------------------------------------------------------------
"$CHARNN" inspect "$V1" >"$WORK/inspect.txt" 2>"$WORK/inspect.err"
rc=$?
check "inspect of the v1 file exits 0 (got $rc)" [ $rc = 0 ]
check "inspect says 'format     v1, task lm, head lm, outputs: the vocabulary'" \
    grep -qx "  format     v1, task lm, head lm, outputs: the vocabulary" "$WORK/inspect.txt"
"$CHARNN" inspect "$V1" --json >"$WORK/inspect.json" 2>&1
check "inspect --json: format_version 1, task lm, head lm, no labels" \
    grep -q '"format_version":1,"task":"lm","head":"lm","labels":\[\],' "$WORK/inspect.json"
check "inspect --json: the fixture is at step 4" grep -q '"step":4,' "$WORK/inspect.json"

# ---- resume the v1 file, and an uninterrupted run ---------------------------
timeout -k 10 120 "$CHARNN" train "${FLAGS[@]}" --out "$WORK/resumed" --resume "$V1" \
    >"$WORK/resumed.log" 2>&1
rc=$?
check "train --resume of the v1 file exits 0 (got $rc)" [ $rc = 0 ]
check "it resumed at step 4" grep -q "resumed from '$V1' at step 4 " "$WORK/resumed.log"
timeout -k 10 120 "$CHARNN" train "${FLAGS[@]}" --out "$WORK/straight" >"$WORK/straight.log" 2>&1
rc=$?
check "the uninterrupted 8-step run exits 0 (got $rc)" [ $rc = 0 ]

# "step loss" of every train line of a metrics file
losses() {
    sed -nE 's/^\{"type":"train","step":([0-9]+),.*"loss":([-0-9.eE+]+),.*/\1 \2/p' "$1"
}
losses "$WORK/resumed/metrics.jsonl" >"$WORK/resumed.losses"
losses "$WORK/straight/metrics.jsonl" | awk '$1 >= 5' >"$WORK/straight.losses"
check "the resumed run logged steps 5-8 ($(cut -d' ' -f1 "$WORK/resumed.losses" | tr '\n' ' '))" \
    [ "$(cut -d' ' -f1 "$WORK/resumed.losses" | tr '\n' ' ')" = "5 6 7 8 " ]
if cmp -s "$WORK/resumed.losses" "$WORK/straight.losses"; then
    ok "the losses of steps 5-8 are identical: $(cut -d' ' -f2 "$WORK/resumed.losses" | tr '\n' ' ')"
else
    notok "the losses of steps 5-8 differ"
    paste "$WORK/resumed.losses" "$WORK/straight.losses" | sed 's/^/#   /'
fi
# the model the resumed run wrote is format v2, task lm
"$CHARNN" inspect "$WORK/resumed/model.h5" >"$WORK/inspect2.txt" 2>&1
check "the resumed run's model.h5 is format v2, task lm, head lm" \
    grep -qx "  format     v2, task lm, head lm, outputs: the vocabulary" "$WORK/inspect2.txt"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
