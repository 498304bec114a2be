#!/usr/bin/env bash
# Generation speed of `charnn sample` against the PyTorch peer
# (bench/sample_bench.py), side by side in one run: one stream, then COUNT
# streams drawn as one batch, REPEATS times each alternating charnn and the
# peer; prints a Markdown table of the medians (characters per second, all
# streams together; the generation loop alone, loading excluded) and writes
# it to bench/results/sample-<host>-<date>.md.
#
#   bash bench/sample_bench.sh [--count 32] [--length 1000] [--repeats 3] [--threads 1]
#                              [--cell lstm] [--layers 2] [--hidden 256]
#
# The model is trained for one step on tinyshakespeare (or a generated text):
# its weights do not change the speed. Needs a built charnn (CHARNN, default
# build/charnn) and Debian's python3-torch and python3-h5py for the peer.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
CHARNN=${CHARNN:-$TOP/build/charnn}
PY=/usr/bin/python3
COUNT=32 LENGTH=1000 REPEATS=3 THREADS=1 CELL=lstm LAYERS=2 HIDDEN=256
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2 ;;
    --length) LENGTH=$2 ;;
    --repeats) REPEATS=$2 ;;
    --threads) THREADS=$2 ;;
    --cell) CELL=$2 ;;
    --layers) LAYERS=$2 ;;
    --hidden) HIDDEN=$2 ;;
    *) echo "sample_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift 2
done
[ -x "$CHARNN" ] || { echo "sample_bench.sh: no charnn at $CHARNN (build it first)" >&2; exit 1; }
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=$TOP/../shared/data/tinyshakespeare.txt
if [ ! -s "$DATA" ]; then
    DATA=$WORK/text.txt
    "$CHARNN" generate --chars 200000 --seed 1 >"$DATA"
fi
"$CHARNN" train --data "$DATA" --out "$WORK/run" --cell "$CELL" --layers "$LAYERS" --hidden "$HIDDEN" \
    --steps 1 --eval-every 0 --threads "$THREADS" --no-progress >/dev/null
MODEL=$WORK/run/model.h5

peer=1
"$PY" -c 'import torch, h5py' 2>/dev/null || { peer=0; echo "peer skipped: $PY cannot import torch and h5py" >&2; }

charnn_rate() { # COUNT: chars/s of one charnn sample run
    "$CHARNN" sample --model "$MODEL" --count "$1" --length "$LENGTH" --threads "$THREADS" --timing \
        2>&1 >/dev/null | sed -nE 's/.*: ([0-9]+) chars\/s$/\1/p'
}
peer_rate() { # COUNT: chars/s of one peer run
    "$PY" "$TOP/bench/sample_bench.py" "$MODEL" --count "$1" --length "$LENGTH" --threads "$THREADS" |
        sed -nE 's/.*"chars_per_s": ([0-9.]+).*/\1/p'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A runs
for r in $(seq 1 "$REPEATS"); do
    for c in 1 "$COUNT"; do
        runs[charnn,$c]+="$(charnn_rate "$c") "
        [ $peer = 1 ] && runs[torch,$c]+="$(peer_rate "$c") "
    done
    echo "repeat $r of $REPEATS done" >&2
done

stamp=$(date -u +%Y-%m-%dT%H:%MZ)
load=$(cut -d' ' -f1-3 /proc/loadavg)
out=$TOP/bench/results/sample-$(hostname -s)-$(date -u +%Y%m%d-%H%M%S).md
mkdir -p "$TOP/bench/results"
{
    echo "# sample: generation speed, charnn vs PyTorch"
    echo
    echo "$stamp, $(nproc) cores, load average $load; $CELL ${LAYERS}x$HIDDEN, one-hot input,"
    echo "$LENGTH characters per stream, $THREADS thread(s), temperature 1, median of $REPEATS"
    echo "runs (characters per second, all streams; generation loop only)."
    echo "$("$CHARNN" --version 2>/dev/null | head -n 1 || echo 'charnn ?'); torch $([ $peer = 1 ] && "$PY" -c 'import torch; print(torch.__version__)' || echo 'skipped')."
    echo
    echo "| streams | charnn chars/s | PyTorch chars/s | charnn / PyTorch | charnn runs | PyTorch runs |"
    echo "|---:|---:|---:|---:|---|---|"
    for c in 1 "$COUNT"; do
        a=$(echo "${runs[charnn,$c]}" | tr ' ' '\n' | grep . | median)
        if [ $peer = 1 ]; then
            b=$(echo "${runs[torch,$c]}" | tr ' ' '\n' | grep . | median)
            ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
        else
            b=- ratio=-
        fi
        echo "| $c | $a | $b | $ratio | ${runs[charnn,$c]}| ${runs[torch,$c]:-}|"
    done
} | tee "$out"
echo "written to ${out#$TOP/}" >&2
