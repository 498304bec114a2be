#!/usr/bin/env bash
# MPI runs and faults through mpiexec: rank 0 alone prints progress, a rank that fails
# to start brings the whole job down quickly with its own message, the same bad input on
# every rank gives one message, and --timing reports every rank.
# Usage: bash tests/cli_mpi_fault.sh PATH/TO/charnn SOURCE_DIR
# Skipped (exit 77) when mpiexec is not installed.
set -u
charnn=$1
src=$2
py=python3
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}

mpiexec=$(command -v mpiexec || command -v mpirun || true)
if [ -z "$mpiexec" ]; then
  echo "skipped: mpiexec is not installed"
  exit 77
fi

work=$PWD/cli_mpi_fault_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

pass=0; fail=0
check() {
  local what=$1; shift
  if "$@"; then echo "ok - $what"; pass=$((pass+1)); return 0; fi
  echo "not ok - $what"; fail=$((fail+1)); return 1
}
has() { grep -qF -- "$2" "$1"; }
count() { grep -cF -- "$2" "$1"; }
show() { sed -n '1,12s/^/    # /p' "$1"; }
now_ms() { date +%s%3N; }

text=$src/../shared/data/tinyshakespeare.txt
if [ -r "$text" ] && [ -s "$text" ]; then
  head -c 100000 "$text" > text.txt
else
  $py -c "
import random; random.seed(3)
w = 'the king and queen of a land where rivers run to sea my lord good sir what say you'.split()
print('\n'.join(' '.join(random.choice(w) for _ in range(9)) for _ in range(2500)))" > text.txt
fi
check "test text exists" test -s text.txt

mpi() { "$mpiexec" --oversubscribe "$@"; }
small=(--cell gru --layers 1 --hidden 32 --seq 20 --batch 8 --threads 1 --eval-every 0 --no-progress)

# ---- two ranks: one set of progress lines ----
mpi -np 2 "$charnn" train --data text.txt --out run2 --steps 10 --log-every 5 "${small[@]}" \
  > np2.out 2> np2.err; rc=$?
check "np 2 train: exit 0 (got $rc)" test "$rc" = 0 || show np2.err
check "np 2 train: exactly one 'step 10/10' line (rank 0 prints)" test "$(count np2.out 'step 10/10')" = 1
check "np 2 train: exactly one 'step 5/10' line" test "$(count np2.out 'step 5/10')" = 1
check "np 2 train: the header is printed once" test "$(grep -c '^charnn .*parameters' np2.out)" = 1
check "np 2 train: the header counts 2 ranks" has np2.out "2 ranks"
check "np 2 train: model written" test -s run2/model.h5

# ---- one rank fails to start (MPMD: rank 1 has a missing file) ----
t0=$(now_ms)
timeout 60 "$mpiexec" --oversubscribe \
  -np 1 "$charnn" train --data text.txt --out run_fail --steps 10 "${small[@]}" : \
  -np 1 "$charnn" train --data /nonexistent/file.txt --out run_fail --steps 10 "${small[@]}" \
  > rankfail.out 2> rankfail.err; rc=$?
el=$(( $(now_ms) - t0 ))
check "rank 1 cannot start: the job exits non-zero (got $rc)" test "$rc" != 0
check "rank 1 cannot start: not killed by the timeout (exit $rc != 124)" test "$rc" != 124
check "rank 1 cannot start: the job ends within 30 s (${el} ms)" test "$el" -lt 30000
check "rank 1 cannot start: stderr names 'rank 1'" has rankfail.err "rank 1" || show rankfail.err
check "rank 1 cannot start: stderr says 'cannot open'" has rankfail.err "cannot open"
check "rank 1 cannot start: rank 1's own line names the file" \
  grep -qE 'rank 1:.*cannot open.*/nonexistent/file\.txt' rankfail.err

# ---- every rank misses the data: one message ----
timeout 60 "$mpiexec" --oversubscribe -np 2 "$charnn" train --data /nonexistent/file.txt \
  --out run_missing --steps 10 "${small[@]}" > allfail.out 2> allfail.err; rc=$?
check "all ranks miss the data: exit 1 (got $rc)" test "$rc" = 1
check "all ranks miss the data: exactly one 'cannot open' line in stderr" \
  test "$(count allfail.err 'cannot open')" = 1 || show allfail.err

# ---- --timing: one line per rank ----
mpi -np 2 "$charnn" train --data text.txt --out run_timing --steps 10 --log-every 10 --timing \
  "${small[@]}" > timing.out 2> timing.err; rc=$?
check "np 2 --timing: exit 0 (got $rc)" test "$rc" = 0 || show timing.err
check "np 2 --timing: a 'rank 0: compute' line" has timing.out "rank 0: compute"
check "np 2 --timing: a 'rank 1: compute' line" has timing.out "rank 1: compute"
check "np 2 --timing: each rank's line appears once per log step" \
  test "$(count timing.out 'rank 0: compute')$(count timing.out 'rank 1: compute')" = 11

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
