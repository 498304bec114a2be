#!/usr/bin/env bash
# The end of a run writes model.h5 before best.h5: a failure while writing
# best.h5 (here: best.h5 is a directory, so its rename fails) exits 1 with a
# message naming best.h5 and leaves a complete, verified model.h5 at the last
# step, which `latest` names.
#
#   bash tests/cli_final_save.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_final_save.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_final_save.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_final_save.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

OUT=$WORK/run
mkdir -p "$OUT/best.h5/keep"
run_limited 120 "$CHARNN" train --data "$DATA" --out "$OUT" --steps 6 --seq 16 --batch 4 \
    --hidden 16 --eval-every 100 --log-every 100 --checkpoint-every 100 >"$WORK/train.out" 2>"$WORK/train.err"
status=$?
check "a failed best.h5 write exits 1 (got $status)" test "$status" -eq 1
check "the error names best.h5" grep -q "best\.h5" "$WORK/train.err"
[ "$(wc -l <"$WORK/train.err")" -eq 1 ] && ok "the error is one line" ||
    { notok "the error is one line"; show "$WORK/train.err"; }
step=$("$CHARNN" inspect "$OUT/model.h5" --json 2>/dev/null | sed -nE 's/.*"step":([0-9]+),.*/\1/p')
check "model.h5 was written and verifies at step 6 (got '${step}')" test "$step" = 6
check "latest names model.h5" grep -qs "model\.h5" "$OUT/latest"
check "best.h5 is still the directory it was" test -d "$OUT/best.h5/keep"

echo "# $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
