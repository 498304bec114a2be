#!/usr/bin/env bash
# OpenMP wait policy: every command but train runs with OMP_WAIT_POLICY=passive (its
# threads sleep at a barrier instead of spinning against whatever else runs on the
# machine); train keeps libgomp's default spinning; a policy or spin count the user set
# is never overridden. libgomp prints the values it runs with under OMP_DISPLAY_ENV=verbose
# (the last block printed is the one the command ran with: charnn starts itself again
# once to set the policy).
# Usage: bash tests/cli_wait_policy.sh PATH/TO/charnn SOURCE_DIR
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
unset OMP_WAIT_POLICY GOMP_SPINCOUNT

work=$PWD/cli_wait_policy_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

# spin FILE: the GOMP_SPINCOUNT of the last libgomp block in FILE
spin() { grep -o "GOMP_SPINCOUNT = '[0-9]*'" "$1" | tail -n1 | grep -o '[0-9][0-9]*'; }

"$charnn" generate --chars 20000 --seed 5 > text.txt 2> gen.err
OMP_DISPLAY_ENV=verbose "$charnn" train --data text.txt --out run --hidden 16 --layers 1 --seq 20 \
  --batch 4 --steps 5 --eval-every 0 --no-progress > train.out 2> train.err; rc=$?
check "train: exit 0 (got $rc)" test "$rc" = 0 || show train.err
check "train keeps libgomp's spinning wait (GOMP_SPINCOUNT 300000, got $(spin train.err))" \
  test "$(spin train.err)" = 300000
check "train starts once (one libgomp block)" test "$(grep -c 'OPENMP DISPLAY ENVIRONMENT BEGIN' train.err)" = 1

short() {
  local name=$1; shift
  OMP_DISPLAY_ENV=verbose "$charnn" "$@" > $name.out 2> $name.err; rc=$?
  check "$name: exit 0 (got $rc)" test "$rc" = 0 || show $name.err
  check "$name: waits passively (GOMP_SPINCOUNT 0, got $(spin $name.err))" test "$(spin $name.err)" = 0
}
short eval eval --model run/model.h5 --data text.txt --split test
short sample sample --model run/model.h5 --length 20
short inspect inspect run/model.h5
short trace trace --model run/model.h5 --data text.txt --split val --max-chars 200 --out trace.h5
short analyze analyze trace.h5
check "eval: its output is the same as with the spinning wait" \
  bash -c "GOMP_SPINCOUNT=300000 '$charnn' eval --model run/model.h5 --data text.txt --split test | cmp -s - eval.out"

# the user's choice stands
OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose "$charnn" eval --model run/model.h5 --data text.txt \
  > act.out 2> act.err; rc=$?
check "OMP_WAIT_POLICY=active eval: exit 0 (got $rc)" test "$rc" = 0
check "OMP_WAIT_POLICY=active eval: kept (got $(spin act.err))" test "$(spin act.err)" = 30000000000
check "OMP_WAIT_POLICY=active eval: not started again" test "$(grep -c 'OPENMP DISPLAY ENVIRONMENT BEGIN' act.err)" = 1
GOMP_SPINCOUNT=1234 OMP_DISPLAY_ENV=verbose "$charnn" eval --model run/model.h5 --data text.txt \
  > sc.out 2> sc.err
check "GOMP_SPINCOUNT=1234 eval: kept (got $(spin sc.err))" test "$(spin sc.err)" = 1234

echo "cli_wait_policy: $pass passed, $fail failed"
[ "$fail" = 0 ]
