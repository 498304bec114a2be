#!/usr/bin/env bash
# Out of memory is exit status 1 with one line, never SIGABRT (134) or the OOM killer:
# a model beyond the machine is refused before anything is allocated, with how much it
# needs and how much there is; so is one beyond `ulimit -v`; and under tighter limits
# the run either fits or ends with one line (the plan, or the checked allocator).
# Usage: bash tests/cli_memory.sh PATH/TO/charnn SOURCE_DIR
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

work=$PWD/cli_memory_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

# has FILE REGEX: here an extended regular expression (tap.sh's takes a fixed string)
has() { grep -qE -- "$2" "$1"; }

"$charnn" generate --chars 20000 --seed 5 > text.txt 2> gen.err ||
  { echo "not ok - generate the text"; show gen.err; exit 1; }
tr=(train --data text.txt --threads 1 --no-progress --eval-every 0)

# ---- beyond the machine: the README's --hidden 65536, and a long chunk ----
t0=$(date +%s)
"$charnn" "${tr[@]}" --out big --hidden 65536 --steps 1 > big.out 2> big.err; rc=$?
check "train --hidden 65536: exit 1 (got $rc)" test "$rc" = 1 || show big.err
check "train --hidden 65536: one line on stderr (got $(lines big.err))" test "$(lines big.err)" = 1
check "train --hidden 65536: says what it needs and what the machine has" \
  has big.err '^charnn: training a lstm of 2 x 65536 \(T 50, B 50\) needs [0-9.]+ GiB of memory; (this machine has|the cgroup memory limit .* is) [0-9.]+ (GiB|MiB)$'
check "train --hidden 65536: refused within 5 s, before allocating" test $(( $(date +%s) - t0 )) -le 5
check "train --hidden 65536: no checkpoint or model" test ! -e big/model.h5
# activations: a 2 x 4096 model fits, its chunks of 1000 x 1000 characters do not
"$charnn" generate --chars 1200000 --seed 6 > long.txt 2> gen.err
"$charnn" train --data long.txt --threads 1 --no-progress --eval-every 0 --out long --hidden 4096 \
  --seq 1000 --batch 1000 --steps 1 > long.out 2> long.err; rc=$?
check "train --seq 1000 --batch 1000: exit 1 (got $rc)" test "$rc" = 1 || show long.err
check "train --seq 1000 --batch 1000: one line naming T and B" \
  has long.err '^charnn: training a lstm of 2 x 4096 \(T 1000, B 1000\) needs [0-9.]+ GiB of memory'
check "train --seq 1000 --batch 1000: one line (got $(lines long.err))" test "$(lines long.err)" = 1

# ---- ulimit -v: the plan counts address space against it ----
( ulimit -v 1500000; exec "$charnn" "${tr[@]}" --out as --hidden 2048 --steps 1 ) > as.out 2> as.err; rc=$?
check "ulimit -v 1.5 GB, a 2 x 2048 model: exit 1 (got $rc)" test "$rc" = 1 || show as.err
check "ulimit -v: one line on stderr (got $(lines as.err))" test "$(lines as.err)" = 1
check "ulimit -v: the line names the limit" has as.err 'address space; the limit \(ulimit -v\) leaves'

# ---- tighter limits: exit 0 or 1, never a signal; one line when 1 ----
# (below about 400 MB of address space OpenBLAS itself never finishes loading: it
# retries its buffer allocation forever before main, so the limits start above that)
for kb in 600000 800000 1000000; do
  ( ulimit -v $kb; exec timeout 120 "$charnn" "${tr[@]}" --out lim$kb --hidden 1024 --steps 2 ) \
    > lim$kb.out 2> lim$kb.err
  rc=$?
  check "ulimit -v $kb, a 2 x 1024 model: exit 0 or 1, never a signal (got $rc)" test "$rc" -le 1 ||
    show lim$kb.err
  if [ "$rc" = 1 ]; then
    check "ulimit -v $kb: exactly one line on stderr (got $(lines lim$kb.err))" \
      test "$(lines lim$kb.err)" = 1 || show lim$kb.err
  fi
done

echo "cli_memory: $pass passed, $fail failed"
[ "$fail" = 0 ]
