#!/usr/bin/env bash
# Tagger training throughput (issue #14), charnn against the PyTorch reference
# (bench/torch_tag_bench.py), side by side in one run: tagged characters per
# second on the NSMC spacing corpus, unidirectional and bidirectional, at 1
# thread and at 2 threads, same tag file, model, batch and example order.
# Targets: charnn >= 2x PyTorch's bidirectional tagger, and a bidirectional
# model costs about twice a unidirectional one (the cost ratio is the
# unidirectional rate over the bidirectional one, per implementation).
#
#   bash bench/tag.sh [--quick] [--repeats N]
#
# The data: ../shared/data/nsmc/train.tsv.xz decompressed into a temporary
# directory and prepared with
#   charnn prepare --task tag --derive spacing --text-col document --min-space-rate 0.125
# (skipped with exit 77 when it is missing). Model: LSTM 2 x 256, embedding 64,
# batch 64, Adam, clipping at 5, no --max-len (reviews are at most 140
# characters). For each repeat the runs alternate, per thread count: charnn
# unidirectional, PyTorch unidirectional, charnn bidirectional, PyTorch
# bidirectional. charnn's rate is the median "chars_per_s" of its
# metrics.jsonl training lines after the first (which holds the start-up);
# PyTorch's is timed over its steps after --warmup. The table gives medians
# over the repeats; it and the raw runs go to
# bench/results/tag-<host>-<date>.{md,json}.
#
# --quick: 3,000 reviews, LSTM 1 x 32, embedding 16, batch 16, a few steps, one
# repeat, results under the build directory: a smoke test of the script, not a
# measurement. Run the full benchmark on a quiet machine only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${CHARNN_BUILD_DIR:-$top/build}
charnn=$build/charnn
data=$top/../shared/data
py=/usr/bin/python3
quick=0 repeats=3
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1; repeats=1 ;;
    --repeats) repeats=$2; shift ;;
    *) echo "usage: bash bench/tag.sh [--quick] [--repeats N]" >&2; exit 2 ;;
    esac
    shift
done
if [ ! -r "$data/nsmc/train.tsv.xz" ]; then
    echo "skipped: $data/nsmc/train.tsv.xz is missing"
    exit 77
fi
[ -x "$charnn" ] || { echo "bench/tag.sh: no charnn at $charnn (build it first)" >&2; exit 1; }
"$py" -c 'import torch, h5py' || { echo "bench/tag.sh: /usr/bin/python3 needs torch and h5py" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/charnn-bench-tag.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1

if [ $quick = 1 ]; then
    { xz -dc "$data/nsmc/train.tsv.xz" || true; } | head -3001 >"$tmp/train.tsv" # xz: SIGPIPE
    model=(--cell lstm --layers 1 --hidden 32 --embed 16)
    B=16 steps=6 warmup=2
else
    xz -dc "$data/nsmc/train.tsv.xz" >"$tmp/train.tsv"
    model=(--cell lstm --layers 2 --hidden 256 --embed 64)
    B=64 steps=100 warmup=10
fi
"$charnn" prepare --task tag --derive spacing --text-col document --min-space-rate 0.125 \
    "$tmp/train.tsv" --out "$tmp/spacing.h5" >"$tmp/prepare.log" 2>&1 ||
    { echo "bench/tag.sh: prepare failed:"; tail -3 "$tmp/prepare.log"; exit 1; }
grep -v '^prepared' "$tmp/prepare.log"

results=$tmp/runs.jsonl
: >"$results"

# charnn's rate: median chars_per_s of the training lines after the first
charnn_rate() {
    "$py" -c '
import json, statistics, sys
r = [json.loads(l)["chars_per_s"] for l in open(sys.argv[1]) if "\"type\":\"train\"" in l]
print(statistics.median(r[1:] if len(r) > 1 else r))' "$1"
}

run_charnn() { # threads bidir(0|1)
    local out=$tmp/run-$1t-$2
    rm -rf "$out"
    local bi=()
    [ "$2" = 1 ] && bi=(--bidirectional)
    local n=$((steps + warmup))
    "$charnn" train --task tag --data "$tmp/spacing.h5" --out "$out" "${model[@]}" "${bi[@]}" \
        --batch $B --steps $n --log-every $((n / 5 > 0 ? n / 5 : 1)) --eval-every 0 \
        --checkpoint-every 0 --threads "$1" --no-progress >"$out.log" 2>&1 ||
        { echo "charnn failed:" >&2; tail -3 "$out.log" >&2; exit 1; }
    charnn_rate "$out/metrics.jsonl"
}

run_torch() { # threads bidir(0|1)
    local bi=()
    [ "$2" = 1 ] && bi=(--bidirectional)
    OMP_NUM_THREADS=$1 "$py" "$here/torch_tag_bench.py" --data "$tmp/spacing.h5" "${model[@]}" \
        "${bi[@]}" --batch $B --steps $steps --warmup $warmup --threads "$1" |
        "$py" -c 'import json, sys; print(json.load(sys.stdin)["chars_per_s"])'
}

for r in $(seq 1 "$repeats"); do
    for t in 1 2; do
        cu=$(run_charnn "$t" 0)
        tu=$(run_torch "$t" 0)
        cb=$(run_charnn "$t" 1)
        tb=$(run_torch "$t" 1)
        echo "{\"repeat\":$r,\"threads\":$t,\"charnn_uni\":$cu,\"torch_uni\":$tu,\"charnn_bi\":$cb,\"torch_bi\":$tb}" |
            tee -a "$results"
    done
done

stamp=$(date -u +%Y%m%d-%H%M%S)
if [ $quick = 1 ]; then dest=$build/bench-tag; else dest=$here/results; fi
mkdir -p "$dest"
base=$dest/tag-$(hostname -s)-$stamp
"$py" - "$results" "$base" "$quick" "${model[*]} --batch $B" "$steps" "$warmup" \
    "$("$charnn" --version 2>/dev/null | head -1)" "$(grep -v '^prepared' "$tmp/prepare.log" | tr '\n' ' ')" <<'EOF'
import json, os, statistics, sys, time
import torch
runs_path, base, quick, model, steps, warmup, version, prepared = sys.argv[1:9]
rows = [json.loads(l) for l in open(runs_path)]
keys = ("charnn_uni", "torch_uni", "charnn_bi", "torch_bi")
med = {t: {k: statistics.median(r[k] for r in rows if r["threads"] == t) for k in keys}
       for t in sorted({r["threads"] for r in rows})}
load = " ".join("%.2f" % x for x in os.getloadavg())
lines = [
    "# tag: training throughput, charnn vs PyTorch (NSMC spacing)",
    "",
    "%s, %d cores, load average %s; %s, steps %s after %s warm-up; tagged characters per "
    "second, medians of %d repeat(s)%s." % (
        time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.cpu_count(), load, model, steps,
        warmup, max(r["repeat"] for r in rows),
        "; --quick: a smoke test, not a measurement" if quick == "1" else ""),
    "%s; torch %s; data: %s" % (version or "charnn", torch.__version__, prepared),
    "",
    "| threads | model | charnn chars/s | PyTorch chars/s | charnn / PyTorch | bidir / uni cost, charnn | bidir / uni cost, PyTorch |",
    "|---:|---|---:|---:|---:|---:|---:|",
]
for t, m in med.items():
    lines.append("| %d | unidirectional | %.0f | %.0f | %.2f | | |" % (
        t, m["charnn_uni"], m["torch_uni"], m["charnn_uni"] / m["torch_uni"]))
    lines.append("| %d | bidirectional | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
        t, m["charnn_bi"], m["torch_bi"], m["charnn_bi"] / m["torch_bi"],
        m["charnn_uni"] / m["charnn_bi"], m["torch_uni"] / m["torch_bi"]))
lines += ["", "Targets (issue #14): charnn / PyTorch >= 2 on the bidirectional rows; a "
          "bidirectional model costs about twice a unidirectional one (cost = the "
          "unidirectional rate over the bidirectional)."]
text = "\n".join(lines) + "\n"
open(base + ".md", "w").write(text)
json.dump({"model": model, "steps": int(steps), "warmup": int(warmup), "quick": quick == "1",
           "torch": torch.__version__, "charnn": version, "load": load, "runs": rows,
           "medians": {str(t): m for t, m in med.items()}}, open(base + ".json", "w"), indent=1)
print("\n" + text + "\nwritten to %s.md and .json" % base)
EOF
