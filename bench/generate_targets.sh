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
#     from the condition. The margin is unconditional - conditional (nats/char),
#     for each of the three condition modes (init, input, every).
#  2. closed loop: a names classifier (train --task classify) trained on the
#     same training split labels 100 generated names per language; the share
#     assigned to the language they were generated for, per language and
#     averaged over languages (target >= 70%). The names come from the mode with
#     the lowest held-out loss, drawn at temperature 0.5 (TEMP=...). The classifier is the names
#     classifier of issue #13 (GRU 2 x 256, 15 epochs, bench/classify_targets.sh),
#     trained on the generator's training split only, applied by `charnn predict`.
#  3. how many generated names are training names: sample --unique --novel
#     per language reports the draws that were training texts (redrawn); a
#     language whose new names run out (sample gives up after 100 draws per name)
#     is reported with the count it reached.
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
    STEPS=40; HIDDEN=32; PER=10; LANGS="Russian Japanese Italian"; TAG=_quick; MODES="init every"
    CLS=(--cell gru --layers 1 --hidden 32 --steps 40)
else
    STEPS=6000; HIDDEN=128; PER=100; LANGS=""; TAG=; MODES="init input every"
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

TEMP=${TEMP:-0.5}
# 1. conditional against unconditional, per condition mode
best=
for mode in $MODES; do
    "$CHARNN" train --task generate --data "$WORK/names.h5" --out "$WORK/cond-$mode" \
        --cond-mode "$mode" --steps "$STEPS" "${COMMON[@]}" >"$WORK/cond-$mode.log"
    "$CHARNN" train --task generate --data "$WORK/names.h5" --out "$WORK/uncond-$mode" \
        --cond-mode "$mode" --cond-vectors "$WORK/zeros.h5" --steps "$STEPS" "${COMMON[@]}" \
        >"$WORK/uncond-$mode.log"
    "$CHARNN" eval --model "$WORK/cond-$mode/model.h5" --data "$WORK/names.h5" --split val \
        --json >"$WORK/cond-$mode.json"
    "$CHARNN" eval --model "$WORK/uncond-$mode/model.h5" --data "$WORK/names.h5" --split val \
        --json --cond-vectors "$WORK/zeros.h5" >"$WORK/uncond-$mode.json"
done
best=$("$PY" -c "import json, sys; w = sys.argv[1]; print(min(sys.argv[2:], key=lambda m: json.load(open(f'{w}/cond-{m}.json'))['loss']))" "$WORK" $MODES)
echo "$best" >"$WORK/best_mode"

# 2. the classifier, then names per language
"$CHARNN" train --task classify --data "$WORK/names.h5" --out "$WORK/cls" "${CLS[@]}" \
    --batch 64 --lr 2e-3 --seed 1 --no-progress --log-every 500 --eval-every 0 \
    --checkpoint-every 0 >"$WORK/cls.log"
"$CHARNN" eval --model "$WORK/cls/model.h5" --data "$WORK/names.h5" --split val --json \
    >"$WORK/cls.json"
[ -n "$LANGS" ] || LANGS=$(ls "$NAMES" | sed 's/\.txt$//')
mkdir -p "$WORK/gen"
for lang in $LANGS; do
    "$CHARNN" sample --model "$WORK/cond-$best/model.h5" --cond "$lang" --count "$PER" \
        --temperature "$TEMP" --seed 7 >"$WORK/gen/$lang.txt"
    "$CHARNN" predict --model "$WORK/cls/model.h5" --json "$WORK/gen/$lang.txt" \
        >"$WORK/gen/$lang.pred"
    # 3. the same count, unique and new, with the draws that were training names
    "$CHARNN" sample --model "$WORK/cond-$best/model.h5" --cond "$lang" --count "$PER" --unique \
        --novel --temperature "$TEMP" --seed 7 --data "$WORK/names.h5" >"$WORK/gen/$lang.new" \
        2>"$WORK/gen/$lang.novel" || true
done

"$PY" - "$WORK" "$OUT/generate_targets$TAG" "$QUICK" "$MODES" "$TEMP" <<'PY'
import json, os, re, sys
work, out, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
modes, temp = sys.argv[4].split(), float(sys.argv[5])
best = open(f"{work}/best_mode").read().strip()
loss = {m: (json.load(open(f"{work}/cond-{m}.json")), json.load(open(f"{work}/uncond-{m}.json")))
        for m in modes}
cond = loss[best][0]
cls = json.load(open(f"{work}/cls.json"))

table, seen = {}, {}
for fn in sorted(os.listdir(f"{work}/gen")):
    lang, ext = fn.rsplit(".", 1)
    if ext == "pred":
        pred = [json.loads(l)["label"] for l in open(f"{work}/gen/{fn}", encoding="utf-8")]
        table[lang] = sum(p == lang for p in pred) / len(pred)
    elif ext == "novel":
        m = re.search(r"drew (\d+) samples for (\d+) printed: (\d+) repeats redrawn, (\d+) training", open(f"{work}/gen/{fn}").read())
        new = sum(1 for l in open(f"{work}/gen/{lang}.new", encoding="utf-8") if l.strip())
        seen[lang] = {"drawn": int(m[1]), "repeats": int(m[3]), "training_names": int(m[4]), "new": new}
mean = sum(table.values()) / len(table)
res = {"quick": quick, "temperature": temp, "closed_loop_mode": best,
       "val_loss": {m: {"conditional": c["loss"], "unconditional": u["loss"],
                        "margin_nats_per_char": u["loss"] - c["loss"]} for m, (c, u) in loss.items()},
       "closed_loop_mean": mean, "classifier_val_accuracy": cls["accuracy"],
       "closed_loop": table, "training_names_among_draws": seen,
       "val_loss_per_class": {k: v["loss"] for k, v in cond["classes"].items()}}
json.dump(res, open(out + ".json", "w"), indent=1)
with open(out + ".txt", "w") as f:
    f.write("QUICK SMOKE RUN: not a measurement\n" if quick else "")
    f.write("held-out loss per character (val split), nats:\n")
    f.write(f"{'mode':<6} {'conditional':>11} {'unconditional':>13} {'margin':>7}\n")
    for m, (c, u) in loss.items():
        f.write(f"{m:<6} {c['loss']:>11.4f} {u['loss']:>13.4f} {u['loss'] - c['loss']:>7.4f}\n")
    f.write(f"closed loop ({best} mode, temperature {temp}): {100 * mean:.1f}% of generated names "
            f"classified as their language (target 70%); the classifier's accuracy on the "
            f"held-out real names: {100 * cls['accuracy']:.1f}%\n")
    f.write(f"{'language':<12} {'classified':>10} {'draws':>6} {'in train':>8} {'new':>4}\n")
    for lang in table:
        s = seen.get(lang, {})
        f.write(f"{lang:<12} {100 * table[lang]:>9.1f}% {s.get('drawn', 0):>6} "
                f"{s.get('training_names', 0):>8} {s.get('new', 0):>4}\n")
print(open(out + ".txt").read(), end="")
PY
