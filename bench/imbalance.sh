#!/usr/bin/env bash
# 2 ranks on cores of unequal speed: --balance off against --balance auto.
#
# A neighbour process pinned to the last core spins DUTY ms of every 100 ms, so
# the rank there gets less of its core; the two settings run alternately,
# REPEATS times each, on LSTM 2x512 with B/2 = 32 streams per rank. Prints each
# run's chars/s over the timed steps (after STEPS_WARM warm-up steps), the
# medians and their ratio, and the splits --balance auto chose.
#
# Usage: bash bench/imbalance.sh [REPEATS] [DUTY]   (defaults 3 and 25)
# Needs a built build/charnn (bash bench/run.sh builds it) and 2 cores.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
charnn=$root/build/charnn
repeats=${1:-3}
duty=${2:-25}
data=${DATA:-$root/../shared/data/tinyshakespeare.txt}
[ -r "$data" ] || data=$root/data/corpus/fortunes.txt   # data/build_corpus.sh makes it
[ -x "$charnn" ] || { echo "imbalance: $charnn not built (run bash bench/run.sh first)" >&2; exit 1; }
[ -r "$data" ] || { echo "imbalance: no text to train on ($data)" >&2; exit 1; }
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "imbalance: needs 2 cores, this machine has $ncpu" >&2; exit 1; }
unset OPENBLAS_CORETYPE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

python3 - "$duty" <<'EOF' &
import sys, time
busy = float(sys.argv[1]) / 1000.0
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < busy:
        pass
    time.sleep(max(0.0, 0.1 - busy))
EOF
loader=$!
taskset -pc $((ncpu - 1)) "$loader" >/dev/null
work=$(mktemp -d)
trap 'kill $loader 2>/dev/null; rm -rf "$work"' EXIT

STEPS_WARM=20
STEPS_TIMED=40
run() { # $1 = off|auto; prints chars/s over the timed steps
  local out=$work/run-$1
  rm -rf "$out"
  mpiexec -np 2 "$charnn" train --data "$data" --out "$out" --cell lstm --layers 2 --hidden 512 \
    --batch 32 --seq 100 --steps $((STEPS_WARM + STEPS_TIMED)) --log-every 10 --eval-every 0 \
    --checkpoint-every 0 --threads 1 --no-progress --optim adam --lr 2e-3 --clip 5 \
    --balance "$1" >"$out.log" 2>&1 || { echo "imbalance: run failed, see:" >&2; cat "$out.log" >&2; exit 1; }
  python3 - "$out/metrics.jsonl" "$STEPS_WARM" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cps = [r["chars_per_s"] for r in rows if r.get("type") == "train" and r["step"] > int(sys.argv[2])]
splits = [r["streams"] for r in rows if r.get("type") == "balance"]
print(f"{sum(cps) / len(cps):.0f}", " ".join("/".join(map(str, s)) for s in splits) or "-")
EOF
}

echo "imbalance: a neighbour spins ${duty} ms of every 100 ms on core $((ncpu - 1)); LSTM 2x512, 2 ranks x 32 streams, ${repeats} runs each"
declare -a off auto
for i in $(seq "$repeats"); do
  read -r c s <<<"$(run off)";  off+=("$c");  echo "  off:  $c chars/s"
  read -r c s <<<"$(run auto)"; auto+=("$c"); echo "  auto: $c chars/s (splits: $s)"
done
python3 - "${off[*]}" "${auto[*]}" <<'EOF'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
auto = [float(x) for x in sys.argv[2].split()]
mo, ma = statistics.median(off), statistics.median(auto)
print(f"median: --balance off {mo:,.0f} chars/s, --balance auto {ma:,.0f} chars/s: {ma / mo:.3f}x")
EOF
