#!/usr/bin/env bash
# Targets of issue #16 (conditional generation) on the names set, written to
# bench/results/generate_targets.{txt,json}:
#
#  1. held-out loss per character of a class-conditioned generator against an
#     unconditional one of the same size and budget, on a deduplicated,
#     stratified 90/10 split (prepare --dedup --val-frac 0.1: each language
#     split 90/10). The unconditional model is the same generator conditioned
#     on a constant: a /features of zeros (D = 1), so it learns the same rows
#     with the same BOS/EOS, parameters and steps, and gets no information
#     from the condition. The margin is unconditional - conditional (nats/char).
#  2. closed loop: a names classifier (train --task classify) trained on the
#     same training split labels 100 generated names per language; the share
#     assigned to the language they were generated for, per language and
#     averaged over languages (target >= 70%). The classifier is the names
#     classifier of issue #13 (GRU 2 x 256, 15 epochs, bench/classify_targets.sh),
#     trained on the generator's training split only, applied by `charnn predict`.
#  3. how many generated names are training names: sample --unique --novel
#     per language reports the draws that were training texts (redrawn).
#
#   bash bench/generate_targets.sh [--quick] [CHARNN]
#
# --quick is a smoke run (a few dozen steps, 3 languages, 10 names each):
# its numbers say the script works, not what the model reaches. The full run
# trains for minutes on a quiet machine: never on a shared one.
set -eu
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHARNN=${1:-$ROOT/build/charnn}
NAMES=$ROOT/../shared/data/names
PY=/usr/bin/python3
[ -d "$NAMES" ] || { echo "no names data at $NAMES"; exit 77; }
"$PY" -c 'import h5py' 2>/dev/null || { echo "needs python3-h5py"; exit 77; }
OUT=$ROOT/bench/results
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
if [ "$QUICK" = 1 ]; then
    STEPS=40; HIDDEN=32; PER=10; LANGS="Russian Japanese Italian"; TAG=_quick
    CLS=(--cell gru --layers 1 --hidden 32 --steps 40)
else
    STEPS=6000; HIDDEN=128; PER=100; LANGS=""; TAG=
    CLS=(--cell gru --layers 2 --hidden 256 --epochs 15)
fi
COMMON=(--cell lstm --layers 1 --hidden "$HIDDEN" --batch 64 --lr 2e-3 --seed 1 --no-progress
        --log-every 500 --eval-every "$STEPS" --checkpoint-every "$STEPS")

"$CHARNN" prepare --task classify "$NAMES" --out "$WORK/names.h5" --dedup --val-frac 0.1 \
    --test-frac 0 --seed 1 >"$WORK/prepare.txt"
"$PY" - "$WORK" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
n = len(h5py.File(f"{w}/names.h5", "r")["labels"])
h5py.File(f"{w}/zeros.h5", "w")["features"] = np.zeros((n, 1), np.float32)
PY

# 1. conditional against unconditional
"$CHARNN" train --task generate --data "$WORK/names.h5" --out "$WORK/cond" --cond-mode init \
    --steps "$STEPS" "${COMMON[@]}" >"$WORK/cond.log"
"$CHARNN" train --task generate --data "$WORK/names.h5" --out "$WORK/uncond" --cond-mode init \
    --cond-vectors "$WORK/zeros.h5" --steps "$STEPS" "${COMMON[@]}" >"$WORK/uncond.log"
"$CHARNN" eval --model "$WORK/cond/model.h5" --data "$WORK/names.h5" --split val --json \
    >"$WORK/cond.json"
"$CHARNN" eval --model "$WORK/uncond/model.h5" --data "$WORK/names.h5" --split val --json \
    --cond-vectors "$WORK/zeros.h5" >"$WORK/uncond.json"

# 2. the classifier, then names per language
"$CHARNN" train --task classify --data "$WORK/names.h5" --out "$WORK/cls" "${CLS[@]}" \
    --batch 64 --lr 2e-3 --seed 1 --no-progress --log-every 500 --eval-every 0 \
    --checkpoint-every 0 >"$WORK/cls.log"
"$CHARNN" eval --model "$WORK/cls/model.h5" --data "$WORK/names.h5" --split val --json \
    >"$WORK/cls.json"
[ -n "$LANGS" ] || LANGS=$(ls "$NAMES" | sed 's/\.txt$//')
mkdir -p "$WORK/gen"
for lang in $LANGS; do
    "$CHARNN" sample --model "$WORK/cond/model.h5" --cond "$lang" --count "$PER" \
        --temperature 0.8 --seed 7 >"$WORK/gen/$lang.txt"
    "$CHARNN" predict --model "$WORK/cls/model.h5" --json "$WORK/gen/$lang.txt" \
        >"$WORK/gen/$lang.pred"
    # 3. the same count, unique and new, with the draws that were training names
    "$CHARNN" sample --model "$WORK/cond/model.h5" --cond "$lang" --count "$PER" --unique \
        --novel --temperature 0.8 --seed 7 --data "$WORK/names.h5" >/dev/null \
        2>"$WORK/gen/$lang.novel"
done

"$PY" - "$WORK" "$OUT/generate_targets$TAG" "$QUICK" <<'PY'
import json, os, re, sys
work, out, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
cond, uncond = json.load(open(f"{work}/cond.json")), json.load(open(f"{work}/uncond.json"))
cls = json.load(open(f"{work}/cls.json"))

table, seen = {}, {}
for fn in sorted(os.listdir(f"{work}/gen")):
    lang, ext = fn.rsplit(".", 1)
    if ext == "pred":
        pred = [json.loads(l)["label"] for l in open(f"{work}/gen/{fn}", encoding="utf-8")]
        table[lang] = sum(p == lang for p in pred) / len(pred)
    elif ext == "novel":
        m = re.search(r"drew (\d+) samples for (\d+) printed: (\d+) repeats redrawn, (\d+) training", open(f"{work}/gen/{fn}").read())
        seen[lang] = {"drawn": int(m[1]), "repeats": int(m[3]), "training_names": int(m[4])}
mean = sum(table.values()) / len(table)
res = {"quick": quick, "val_loss_conditional": cond["loss"], "val_loss_unconditional": uncond["loss"],
       "margin_nats_per_char": uncond["loss"] - cond["loss"], "closed_loop_mean": mean,
       "classifier_val_accuracy": cls["accuracy"],
       "closed_loop": table, "training_names_among_draws": seen,
       "val_loss_per_class": {k: v["loss"] for k, v in cond["classes"].items()}}
json.dump(res, open(out + ".json", "w"), indent=1)
with open(out + ".txt", "w") as f:
    f.write(("QUICK SMOKE RUN: not a measurement\n" if quick else "") +
            f"held-out loss per char: conditional {cond['loss']:.4f}, unconditional {uncond['loss']:.4f}, "
            f"margin {uncond['loss'] - cond['loss']:.4f} nats/char\n"
            f"closed loop: {100 * mean:.1f}% of generated names classified as their language (target 70%); "
            f"the classifier's accuracy on the held-out real names: {100 * cls['accuracy']:.1f}%\n")
    f.write(f"{'language':<12} {'classified':>10} {'draws':>6} {'in train':>8}\n")
    for lang in table:
        s = seen.get(lang, {})
        f.write(f"{lang:<12} {100 * table[lang]:>9.1f}% {s.get('drawn', 0):>6} {s.get('training_names', 0):>8}\n")
print(open(out + ".txt").read(), end="")
PY
