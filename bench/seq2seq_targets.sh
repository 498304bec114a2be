#!/usr/bin/env bash
# The translation targets of issue #15, side by side with the PyTorch
# reference (bench/torch_seq2seq_bench.py), into bench/results/seq2seq-*.{md,json}:
#   1. English->French, first 10,000 pairs of fra.txt, 90/10 split, LSTM 256,
#      no attention: charnn's and PyTorch's held-out padding-free loss, and
#      their training throughput (target characters per second, same threads);
#   2. the same with attention (general): chrF by source-length fifth, the
#      longest fifth against the no-attention model;
#   3. beam 5 against greedy: the chrF difference;
#   4. English->Korean (kor.txt): chrF, exact match and ten test translations.
# The full run takes about 7 minutes on 2 cores (PyTorch's 10 epochs are 4 of
# them) and wants a quiet machine for the throughput row; --quick runs every
# step on a few hundred pairs and a tiny model in seconds to check the pipeline.
# Only summary.md, the JSON files and the Korean samples are meant to be kept;
# the models and prepared files stay out of git.
#
#   bash bench/seq2seq_targets.sh [--quick] [--threads N] [CHARNN]
set -euo pipefail
QUICK=0
THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --threads) THREADS=$2; shift 2 ;;
    *) break ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHARNN=${1:-$ROOT/build/charnn}
DATA=$ROOT/../shared/data
PY=/usr/bin/python3
[ -f "$DATA/fra-eng/fra.txt" ] || { echo "missing $DATA/fra-eng/fra.txt" >&2; exit 1; }
if [ $QUICK = 1 ]; then
    N=400; HID=32; EPOCHS=1; KOR_LIMIT=400; STEPS_FLAG=(--steps 20); TORCH_STEPS=(--max-steps 20)
    OUT=$(mktemp -d /tmp/seq2seq-quick.XXXXXX)
else
    N=10000; HID=256; EPOCHS=10; KOR_LIMIT=0; STEPS_FLAG=(--epochs $EPOCHS); TORCH_STEPS=()
    OUT=$ROOT/bench/results/seq2seq-$(hostname -s)-$(date -u +%Y%m%d-%H%M%S)
fi
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1
BATCH=32
LR=2e-3
COMMON=(--task seq2seq --cell lstm --layers 1 --hidden $HID --batch $BATCH --lr $LR --clip 5
        --seed 1 --threads $THREADS --no-progress --log-every 10)
say() { echo "== $*" >&2; }
jget() { "$PY" -c "import json,sys; d=json.load(open('$1')); print(eval('d$2'))"; }

say "prepare: first $N pairs of fra.txt, 90/10"
"$CHARNN" prepare --task seq2seq "$DATA/fra-eng/fra.txt" --limit $N --val-frac 0 --test-frac 0.1 \
    --out "$OUT/fra.h5" >"$OUT/prepare-fra.txt"

say "charnn: LSTM $HID, no attention"
"$CHARNN" train "${COMMON[@]}" "${STEPS_FLAG[@]}" --data "$OUT/fra.h5" --out "$OUT/fra-none" \
    --attention none >"$OUT/train-fra-none.txt"
"$CHARNN" eval --model "$OUT/fra-none/model.h5" --data "$OUT/fra.h5" --json >"$OUT/eval-fra-none.json"
say "PyTorch: the same model and settings"
"$PY" "$ROOT/bench/torch_seq2seq_bench.py" train --data "$OUT/fra.h5" --hidden $HID --layers 1 \
    --attention none --batch $BATCH --epochs $EPOCHS "${TORCH_STEPS[@]}" --lr $LR --clip 5 \
    --seed 1 --threads $THREADS >"$OUT/torch-fra-none.json"
# charnn's throughput: the median of its logged intervals
"$PY" - "$OUT/fra-none/metrics.jsonl" >"$OUT/charnn-rate.txt" <<'PY'
import json, statistics, sys
r = [json.loads(l)["tgt_chars_per_s"] for l in open(sys.argv[1]) if '"type":"train"' in l]
print(statistics.median(r) if r else 0)
PY

say "charnn: LSTM $HID, attention general"
"$CHARNN" train "${COMMON[@]}" "${STEPS_FLAG[@]}" --data "$OUT/fra.h5" --out "$OUT/fra-general" \
    --attention general >"$OUT/train-fra-general.txt"
"$CHARNN" eval --model "$OUT/fra-general/model.h5" --data "$OUT/fra.h5" --json \
    >"$OUT/eval-fra-general.json"
"$CHARNN" eval --model "$OUT/fra-general/model.h5" --data "$OUT/fra.h5" --json --beam 5 \
    --html "$OUT/fra-general.html" >"$OUT/eval-fra-general-beam5.json"

say "English->Korean: kor.txt, attention general"
"$CHARNN" prepare --task seq2seq "$DATA/kor-eng/kor.txt" --limit $KOR_LIMIT --val-frac 0.05 \
    --test-frac 0.1 --out "$OUT/kor.h5" >"$OUT/prepare-kor.txt"
"$CHARNN" train "${COMMON[@]}" "${STEPS_FLAG[@]}" --data "$OUT/kor.h5" --out "$OUT/kor" \
    --attention general >"$OUT/train-kor.txt"
"$CHARNN" eval --model "$OUT/kor/model.h5" --data "$OUT/kor.h5" --json --beam 5 >"$OUT/eval-kor.json"
# ten test sources: the last pairs of the test split are the file's test pairs in input order
"$PY" - "$OUT/kor.h5" "$OUT/kor-src.txt" "$OUT/kor-ref.txt" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r") as f:
    a = f.attrs
    n, nt = int(a["n_pairs"]), int(a["n_test"])
    vs = [chr(c) for c in f["vocab_source"][:]]
    vt = ["", ""] + [chr(c) for c in f["vocab_target"][:]]
    so, to = f["src_offsets"][:], f["tgt_offsets"][:]
    s, t = f["src_ids"][:], f["tgt_ids"][:]
with open(sys.argv[2], "w") as fs, open(sys.argv[3], "w") as fr:
    for i in range(n - nt, min(n - nt + 10, n)):
        fs.write("".join(vs[c] for c in s[so[i]:so[i + 1]]) + "\n")
        fr.write("".join(vt[c] for c in t[to[i]:to[i + 1]]) + "\n")
PY
"$CHARNN" translate --model "$OUT/kor/model.h5" --beam 5 "$OUT/kor-src.txt" >"$OUT/kor-hyp.txt"

say "summary"
"$PY" - "$OUT" "$QUICK" "$THREADS" "$HID" "$BATCH" "$LR" "${STEPS_FLAG[*]}" <<'PY' >"$OUT/summary.md"
import json, sys
out, quick, threads = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
hid, batch, lr, steps = sys.argv[4:8]
J = lambda n: json.load(open(f"{out}/{n}"))
none, torch_none = J("eval-fra-none.json"), J("torch-fra-none.json")
gen, beam = J("eval-fra-general.json"), J("eval-fra-general-beam5.json")
kor = J("eval-kor.json")
rate = float(open(f"{out}/charnn-rate.txt").read())
print(f"# seq2seq targets{' (QUICK smoke run: numbers mean nothing)' if quick else ''}\n")
# the committed summary names its directory relative to the repository
where = out if quick else "bench/results/" + out.rstrip("/").split("/")[-1]
print(f"threads {threads}; results in {where}\n")
print(f"every model: 1 layer of {hid} units, one-hot input, batch {batch}, Adam {lr}, "
      f"clip 5, seed 1, {steps.lstrip('-')}\n")
print("| English->French, LSTM, no attention | charnn | PyTorch |\n|---|---|---|")
print(f"| held-out loss, nats/char | {none['loss']:.4f} | {torch_none['test_loss']:.4f} |")
tr = torch_none['train_target_chars_per_s']
print(f"| training target chars/s | {rate:.0f} | {tr:.0f} |")
print(f"\nthroughput ratio charnn/PyTorch: {rate / tr if tr else float('nan'):.2f}x\n")
print("| source length | pairs | chrF none | chrF general | exact none | exact general |\n|---|---|---|---|---|---|")
for a, b in zip(none["by_source_length"], gen["by_source_length"]):
    print(f"| {a['min_len']}-{a['max_len']} | {a['pairs']} | {a['chrf']:.2f} | {b['chrf']:.2f} | "
          f"{100 * a['exact_match']:.1f}% | {100 * b['exact_match']:.1f}% |")
print(f"\nattention general, greedy chrF {gen['chrf']:.2f}, beam 5 chrF {beam['chrf']:.2f} "
      f"(difference {beam['chrf'] - gen['chrf']:+.2f})\n")
print(f"English->Korean (beam 5): chrF {kor['chrf']:.2f}, exact match {100 * kor['exact_match']:.2f}%, "
      f"held-out loss {kor['loss']:.4f} nats/char\n")
print("| source | reference | charnn |\n|---|---|---|")
for s, r, h in zip(open(f"{out}/kor-src.txt"), open(f"{out}/kor-ref.txt"), open(f"{out}/kor-hyp.txt")):
    print(f"| {s.strip()} | {r.strip()} | {h.strip()} |")
PY
cat "$OUT/summary.md"
