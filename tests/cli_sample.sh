#!/usr/bin/env bash
# sample's output promises: a write that fails (a full disk, /dev/full) ends sample with
# exit 1 and one line on stderr, never exit 0 with truncated text; temperatures too small
# for floating point (down to 1e-300) give exactly the greedy text of --temperature 0.
# Usage: bash tests/cli_sample.sh PATH/TO/charnn SOURCE_DIR
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

work=$PWD/cli_sample_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1


# a small model on a generated text (no data files needed)
"$charnn" generate --chars 20000 --seed 5 > text.txt 2> gen.err ||
  { echo "not ok - generate the text"; show gen.err; exit 1; }
"$charnn" train --data text.txt --out run --cell gru --layers 1 --hidden 32 --seq 20 --batch 8 \
  --steps 60 --eval-every 0 --threads 1 --no-progress > train.out 2> train.err; rc=$?
check "train the model: exit 0 (got $rc)" test "$rc" = 0 || { show train.err; exit 1; }
smp() { "$charnn" sample --model run/model.h5 "$@"; }

# ---- a full disk ----
if [ -w /dev/full ]; then
  for len in 10 100000; do
    smp --length $len --seed 1 > /dev/full 2> full$len.err; rc=$?
    check "sample --length $len > /dev/full: exit 1 (got $rc)" test "$rc" = 1
    check "sample --length $len > /dev/full: one line on stderr (got $(lines full$len.err))" \
      test "$(lines full$len.err)" = 1 || show full$len.err
    check "sample --length $len > /dev/full: the line says the write failed" \
      has full$len.err "charnn: cannot write the sample: No space left on device"
  done
  smp --length 10 --prime "the " --seed 1 > /dev/full 2> fullp.err; rc=$?
  check "sample --prime > /dev/full: exit 1 (got $rc)" test "$rc" = 1
else
  echo "skip - /dev/full is not writable here"
fi
# a closed pipe: the reader goes away early; sample stops instead of writing on
( smp --length 2000000 --seed 1 2> pipe.err; echo $? > pipe.rc ) | head -c 10 > /dev/null
rc=$(cat pipe.rc)
check "sample into a closed pipe: killed by SIGPIPE or exit 1, never 0 (got $rc)" \
  test "$rc" = 141 -o "$rc" = 1

# ---- tiny temperatures are greedy ----
smp --temperature 0 --length 300 --prime "the " > t0.txt 2> t0.err; rc=$?
check "sample --temperature 0: exit 0 (got $rc)" test "$rc" = 0 || show t0.err
for t in 1e-300 1e-15 1e-12 1e-10; do
  for seed in 1 2; do
    smp --temperature $t --length 300 --prime "the " --seed $seed > t$t.$seed.txt 2> t.err; rc=$?
    check "sample --temperature $t --seed $seed: exit 0 (got $rc)" test "$rc" = 0 || show t.err
    check "sample --temperature $t --seed $seed: the greedy text" cmp -s t0.txt t$t.$seed.txt
  done
done

echo "cli_sample: $pass passed, $fail failed"
[ "$fail" = 0 ]
