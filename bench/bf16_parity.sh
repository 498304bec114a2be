#!/usr/bin/env bash
# Learning parity of --precision bf16 (issue 17): on tinyshakespeare, LSTM, GRU
# and RNN at 1x128 (B32 T64) and 2x512 (B64 T100), the same seed and steps in
# f32 and in bf16; the validation loss over the whole validation split at the
# end must agree within 1%. Prints a markdown table (the README's) and exits 1
# when a row misses.
#
#   bash bench/bf16_parity.sh [--steps N] [--small-only | --large-only] [--cells lstm,gru,rnn]
#                             [--threads K]
#
# Needs a CPU with AVX512_BF16 and build/charnn. Each 2x512 run is N steps of
# 6400 characters: on one quiet core (11-18k chars/s) 1000 steps take about ten
# minutes per run, six runs per size; --small-only keeps to the 1x128 rows,
# --large-only to the 2x512 ones, and --cells to some cells (two instances
# pinned to one core each, e.g. taskset -c 0 ... --cells lstm and taskset -c 1
# ... --cells gru,rnn, take about 20 minutes for the 2x512 rows).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
charnn=${CHARNN:-$top/build/charnn}
data=$top/../shared/data/tinyshakespeare.txt
steps=1000
small_only=0
large_only=0
cells=lstm,gru,rnn
threads=1
while [ $# -gt 0 ]; do
    case $1 in
    --steps) steps=$2; shift 2 ;;
    --small-only) small_only=1; shift ;;
    --large-only) large_only=1; shift ;;
    --cells) cells=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "bf16_parity: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -s "$data" ] || { echo "bf16_parity: no $data" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bf16_parity.XXXXXX")
trap 'rm -rf "$work"' EXIT

sizes=()
[ $large_only = 1 ] || sizes+=("1 128 32 64")
[ $small_only = 1 ] || sizes+=("2 512 64 100")
for cell in ${cells//,/ }; do
    case $cell in lstm | gru | rnn) ;; *) echo "bf16_parity: unknown cell '$cell'" >&2; exit 2 ;; esac
done

# the validation loss of the run's last validation (every step's losses are in
# metrics.jsonl; --eval-every 0 validates once, at the end, over the whole split)
val_loss() {
    grep '"type":"val"' "$1/metrics.jsonl" | tail -n 1 | sed -E 's/.*"val_loss":([^,]+),.*/\1/'
}

echo "| model | steps | f32 val loss | bf16 val loss | bf16 / f32 - 1 |"
echo "|---|---|---|---|---|"
fail=0
for size in "${sizes[@]}"; do
    read -r L H B T <<<"$size"
    for cell in ${cells//,/ }; do
        declare -A loss=()
        for p in f32 bf16; do
            out=$work/$cell-$L-$H-$p
            OMP_NUM_THREADS=$threads "$charnn" train --data "$data" --out "$out" --cell "$cell" \
                --layers "$L" --hidden "$H" --batch "$B" --seq "$T" --steps "$steps" --seed 123 \
                --eval-every 0 --checkpoint-every 0 --log-every 100 --threads "$threads" \
                --precision "$p" --no-progress >"$out.log" 2>&1 ||
                { echo "bf16_parity: $cell ${L}x$H $p failed:" >&2; tail -n 3 "$out.log" >&2; exit 1; }
            loss[$p]=$(val_loss "$out")
        done
        rel=$(python3 -c "print('%+.2f%%' % (100 * (${loss[bf16]} / ${loss[f32]} - 1)))")
        ok=$(python3 -c "print(int(abs(${loss[bf16]} / ${loss[f32]} - 1) <= 0.01))")
        [ "$ok" = 1 ] || fail=1
        echo "| $cell ${L}×$H B$B T$T | $steps | ${loss[f32]} | ${loss[bf16]} | $rel |"
    done
done
exit $fail
