#!/usr/bin/env bash
# More ranks than cores, some of them slowed: --balance off against auto.
#
# RANKS ranks share 2 cores, rank r pinned to core r % 2 (mpiexec
# --oversubscribe --bind-to none, then taskset per rank), and a neighbour
# process spins on core 1 all the time, so the ranks there get 1/(k+1) of a
# core instead of 1/k (k = RANKS/2 ranks per core): with 4 ranks they run at
# 2/3 of the others' speed, with 8 at 4/5. The two settings alternate,
# REPEATS runs each, STEPS steps of which the first WARM are not timed.
# Prints each run's chars/s, the medians and their ratio, and the splits
# --balance auto chose (from metrics.jsonl).
#
# With SLOWDOWN=r:f, rank r is slowed instead by charnn's test hook
# CHARNN_TEST_SLOWDOWN (before each batch it sleeps f - 1 times what its rows
# took to compute on the last step), which holds whatever else runs on the
# machine; the spinner then stays off.
#
# Usage: bash bench/stragglers.sh [RANKS] [REPEATS] [STEPS]   (defaults 4, 3, 80)
#   MODEL="--cell lstm --layers 2 --hidden 512 --batch 32 --seq 100" (the default) sets the
#   model and B per rank.
# Needs a built build/charnn and 2 cores. A quiet machine: other load on the
# cores adds noise that neither setting controls.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
charnn=$root/build/charnn
ranks=${1:-4}
repeats=${2:-3}
steps=${3:-80}
warm=$((steps / 4))
model=${MODEL:---cell lstm --layers 2 --hidden 512 --batch 32 --seq 100}
data=${DATA:-$root/../shared/data/tinyshakespeare.txt}
[ -r "$data" ] || data=$root/data/corpus/fortunes.txt   # data/build_corpus.sh makes it
[ -x "$charnn" ] || { echo "stragglers: $charnn not built (run bash bench/run.sh first)" >&2; exit 1; }
[ -r "$data" ] || { echo "stragglers: no text to train on ($data)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "stragglers: needs 2 cores" >&2; exit 1; }
unset OPENBLAS_CORETYPE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

slowdown=${SLOWDOWN:-}
pass=()
if [ -n "$slowdown" ]; then
  export CHARNN_TEST_SLOWDOWN=$slowdown
  pass=(-x CHARNN_TEST_SLOWDOWN)
  sleep 1000000 &   # nothing spins
else
  taskset -c 1 python3 -c 'while True: pass' &
fi
spinner=$!
work=$(mktemp -d)
trap 'kill $spinner 2>/dev/null; rm -rf "$work"' EXIT

run() { # $1 = off|auto; prints chars/s over the timed steps, then the splits
  local out=$work/run-$1
  rm -rf "$out"
  # shellcheck disable=SC2086
  mpiexec --oversubscribe --bind-to none "${pass[@]}" -np "$ranks" bash -c \
    'exec taskset -c $((OMPI_COMM_WORLD_RANK % 2)) "$0" "$@"' "$charnn" train --data "$data" \
    --out "$out" $model --steps "$steps" --log-every 5 --eval-every 0 --checkpoint-every 0 \
    --threads 1 --no-progress --optim adam --lr 2e-3 --clip 5 --balance "$1" >"$out.log" 2>&1 ||
    { echo "stragglers: run failed, see:" >&2; cat "$out.log" >&2; exit 1; }
  python3 - "$out/metrics.jsonl" "$warm" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cps = [r["chars_per_s"] for r in rows if r.get("type") == "train" and r["step"] > int(sys.argv[2])]
splits = [f'{r["step"]}:' + "/".join(map(str, r["streams"])) for r in rows if r.get("type") == "balance"]
print(f"{sum(cps) / len(cps):.0f}", " ".join(splits) or "-")
PY
}

how="a spinner on core 1"
[ -z "$slowdown" ] || how="CHARNN_TEST_SLOWDOWN=$slowdown"
echo "stragglers: $ranks ranks on 2 cores (rank r on core r % 2), $how; $model; $steps steps ($warm untimed), $repeats runs each"
declare -a off auto
for i in $(seq "$repeats"); do
  read -r c s <<<"$(run off)";  off+=("$c");  echo "  off:  $c chars/s"
  read -r c s <<<"$(run auto)"; auto+=("$c"); echo "  auto: $c chars/s (moves at step:split: $s)"
done
python3 - "${off[*]}" "${auto[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
auto = [float(x) for x in sys.argv[2].split()]
mo, ma = statistics.median(off), statistics.median(auto)
print(f"median: --balance off {mo:,.0f} chars/s, --balance auto {ma:,.0f} chars/s: {ma / mo:.3f}x")
PY
