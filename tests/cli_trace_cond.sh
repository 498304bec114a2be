#!/usr/bin/env bash
# Traces of conditional generators (kind "generate") and vector classifiers
# (kind "features"), docs/trace-format.md, and `--layers 0` refused where a
# recurrent stack is needed:
#  - generate, on two classes whose alphabets do not overlap (the condition
#    decides the characters): `train --trace-every` writes a trace at those
#    steps; `charnn trace` has the documented shapes, /loss = -log /prob, and
#    its mean per-character loss is `charnn eval`'s on the same split to 1e-5
#    (per class too); `charnn analyze` finds units that follow the condition
#    class (|r| >= 0.9 for the top unit after a few seconds of training;
#    measured 0.99), in text and --json; a vector generator traces with
#    --cond-vectors (its /cond and /layer0/cond_corr) and without it is
#    refused in one line;
#  - features, an MLP (--layers 0) and a one-step LSTM: `--trace-every`
#    writes traces; `charnn trace` records per example the vector, the class
#    probabilities (rows sum to 1), the loss and the hidden state, with the
#    mean loss and the accuracy of `charnn eval` on the same split; analyze
#    names the units that follow the class (|r| >= 0.8; measured 0.86-0.97).
#
#   bash tests/cli_trace_cond.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_trace_cond.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_trace_cond.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
WORK=$PWD/cli_trace_cond.d
rm -rf "$WORK"
mkdir -p "$WORK/names"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "skipped: python3-h5py is not installed"; exit 77; }

# ---- generate --------------------------------------------------------------
"$PY" - <<'PY'
import random
r = random.Random(5)
for cls, letters in (("Soft", "aeilmnou"), ("Hard", "bdgkprtz")):
    names = set()
    while len(names) < 60:
        names.add("".join(r.choice(letters) for _ in range(r.randint(3, 7))))
    open(f"names/{cls}.txt", "w").write("\n".join(sorted(names)) + "\n")
PY
"$CHARNN" prepare --task classify names --out ex.h5 --val-frac 0.25 --test-frac 0 >/dev/null
GEN=(--task generate --data ex.h5 --hidden 16 --layers 2 --batch 16 --lr 0.01 --log-every 200
     --eval-every 0 --no-progress --seed 3)
"$CHARNN" train "${GEN[@]}" --cond-mode init --steps 400 --trace-every 200 \
    --trace-probe-chars 40 --out gen >gen.out 2>&1
check "generate trains with --trace-every (exit $?)" test -s gen/model.h5
check "--trace-every 200 wrote the traces of steps 200 and 400" \
    test "$(cd gen && echo trace_generate-*.h5)" = "trace_generate-00000200.h5 trace_generate-00000400.h5"
check "a training trace holds whole validation examples, at most 40 characters" "$PY" - <<'PY'
import h5py, sys
f = h5py.File("gen/trace_generate-00000400.h5", "r")
a = f.attrs
o = f["offsets"][:]
sys.exit(not (a["kind"] == "generate" and a["split"] == "val" and a["model_step"] == 400 and
              0 < o[-1] <= 40 and o[-1] == a["n_steps"] and a["model"] == "gen"))
PY
"$CHARNN" trace --model gen/model.h5 --data ex.h5 --split val --out g.h5 >trace.out 2>&1
check "charnn trace on a generator (exit $?): $(cat trace.out)" \
    has trace.out "written to 'g.h5': loss "
check "the generate trace has the documented shapes" "$PY" - <<'PY'
import h5py, numpy as np, sys
f = h5py.File("g.h5", "r")
a = f.attrs
E, N, H = int(a["n_examples"]), int(a["n_steps"]), int(a["hidden"])
ex = h5py.File("ex.h5", "r")
b, e = int(ex.attrs["val_begin"]), int(ex.attrs["val_end"])
lens = np.diff(ex["offsets"][b:e + 1])
ok = (a["kind"] == "generate" and a["cond"] == "class" and a["cond_mode"] == "init" and
      a["layers"] == 2 and E == e - b and N == int((lens + 1).sum()) and
      list(f["example_index"][:]) == list(range(b, e)) and
      list(f["labels"][:]) == list(ex["labels"][b:e]) and
      [s.decode() for s in f["label_names"][:]] == ["Hard", "Soft"] and
      np.array_equal(np.diff(f["offsets"][:]), lens + 1))
for k in ("tokens", "targets", "loss", "prob"):
    ok = ok and f[k].shape == (N,)
for l in range(2):
    ok = ok and f[f"layer{l}/h"].shape == (N, H) and f[f"layer{l}/c"].shape == (N, H)
    ok = ok and f[f"layer{l}/label_corr"].shape == (2, H)
# BOS then the text; the targets are the text then EOS
o = f["offsets"][:]
t, y = f["tokens"][:], f["targets"][:]
ok = ok and all(t[o[i]] == y[o[i + 1] - 1] for i in range(E))
ok = ok and np.allclose(f["loss"][:], -np.log(f["prob"][:]), rtol=1e-5, atol=1e-6)
sys.exit(not ok)
PY
"$CHARNN" eval --model gen/model.h5 --data ex.h5 --split val --json >eval.json
check "the trace's mean loss per character is eval's, overall and per class, to 1e-5" "$PY" - <<'PY'
import h5py, json, numpy as np, sys
f = h5py.File("g.h5", "r")
d = json.load(open("eval.json"))
loss, o, lab = f["loss"][:].astype(np.float64), f["offsets"][:], f["labels"][:]
names = [s.decode() for s in f["label_names"][:]]
ok = abs(loss.mean() - d["loss"]) <= 1e-5 * d["loss"] and len(loss) == d["tokens"]
for c, name in enumerate(names):
    sel = np.concatenate([loss[o[i]:o[i + 1]] for i in range(len(lab)) if lab[i] == c])
    ok = ok and abs(sel.mean() - d["classes"][name]["loss"]) <= 1e-5 * sel.mean()
print(f"    # trace {loss.mean():.7f}, eval {d['loss']:.7f}")
sys.exit(not ok)
PY
"$CHARNN" analyze g.h5 >an.txt 2>&1
check "analyze names the condition's units: $(sed -n 4p an.txt)" \
    has an.txt "units whose state follows the condition class (Pearson r over the characters)"
"$CHARNN" analyze --json --top 3 g.h5 >an.json 2>&1
check "analyze --json: the top unit follows the class, |r| >= 0.9" "$PY" - <<'PY'
import h5py, json, numpy as np, sys
d = json.load(open("an.json"))
top = d["units"]["Soft"]
f = h5py.File("g.h5", "r")
r = f[f"layer{top[0]['layer']}/label_corr"][1, top[0]["unit"]]
print(f"    # top unit layer {top[0]['layer']} unit {top[0]['unit']} r {top[0]['r']}")
sys.exit(not (d["kind"] == "generate" and len(top) == 3 and abs(top[0]["r"]) >= 0.9 and
              abs(r - top[0]["r"]) < 1e-4 and abs(top[0]["r"]) >= abs(top[2]["r"]) and
              abs(d["loss"] - f["loss"][:].astype(np.float64).mean()) < 1e-6))
PY
check "an independent check: that unit's mean state differs by class by the sign of r" "$PY" - <<'PY'
import h5py, json, numpy as np, sys
u = json.load(open("an.json"))["units"]["Soft"][0]
f = h5py.File("g.h5", "r")
h = f[f"layer{u['layer']}/h"][:, u["unit"]]
o, lab = f["offsets"][:], f["labels"][:]
cls = np.repeat(lab, np.diff(o))
r = np.corrcoef(h, cls == 1)[0, 1]
sys.exit(not (abs(r - u["r"]) < 1e-3 and np.sign(h[cls == 1].mean() - h[cls == 0].mean()) == np.sign(r)))
PY

# vector conditions: the first of 3 features is the class
"$PY" - <<'PY'
import h5py, numpy as np
ex = h5py.File("ex.h5", "r")
n = len(ex["labels"])
f = np.random.RandomState(1).rand(n, 3).astype(np.float32)
f[:, 0] = ex["labels"][:]
h5py.File("feat.h5", "w")["features"] = f
PY
"$CHARNN" train "${GEN[@]}" --cond-vectors feat.h5 --cond-mode input --steps 40 --out vec >vec.out 2>&1
"$CHARNN" trace --model vec/model.h5 --data ex.h5 --split val --out v.h5 >vt.out 2>&1
status=$?
check "a vector generator without --cond-vectors exits 1 (got $status)" test "$status" -eq 1
check "and says what to give: $(cat vt.out)" test "$(cat vt.out)" = \
    "charnn: 'vec/model.h5' is conditioned on vectors: give --cond-vectors FILE with /features for 'ex.h5'"
"$CHARNN" trace --model vec/model.h5 --data ex.h5 --cond-vectors feat.h5 --split val --out v.h5 >/dev/null 2>&1
check "with them it records each example's vector and the units' r with each dimension" "$PY" - <<'PY'
import h5py, numpy as np, sys
f = h5py.File("v.h5", "r")
x = h5py.File("feat.h5", "r")["features"][:]
idx = f["example_index"][:]
sys.exit(not (f.attrs["cond"] == "vector" and np.array_equal(f["cond"][:], x[idx]) and
              f["layer1/cond_corr"].shape == (3, 16) and "label_corr" not in f["layer0"]))
PY
"$CHARNN" analyze v.h5 >va.txt 2>&1
check "analyze lists the units per condition dimension" has va.txt "  dim 2 "
"$CHARNN" eval --model vec/model.h5 --data ex.h5 --cond-vectors feat.h5 --split val --json >veval.json
check "and its mean loss is eval's to 1e-5" "$PY" - <<'PY'
import h5py, json, numpy as np, sys
l = h5py.File("v.h5", "r")["loss"][:].astype(np.float64).mean()
sys.exit(not abs(l - json.load(open("veval.json"))["loss"]) <= 1e-5 * l)
PY

# ---- features --------------------------------------------------------------
"$PY" - <<'PY'
import numpy as np, h5py
r = np.random.RandomState(3)
n = 600
w, a, h = r.normal(80, 15, n), r.uniform(20, 80, n), r.normal(170, 10, n)
s = 0.5 * w + 0.3 * a - 0.2 * h
y = (s > np.median(s)).astype(int)
with h5py.File("bp.h5", "w") as f:
    f["features"] = np.stack([w, a, h], 1).astype(np.float32)
    f["labels"] = y.astype(np.int32)
    f["label_names"] = np.array([b"normal", b"high"])
PY
for layers in 0 1; do
    "$CHARNN" train --task classify --features bp.h5 --val-frac 0.25 --hidden 16 --layers "$layers" \
        --batch 32 --steps 300 --eval-every 0 --log-every 300 --trace-every 150 \
        --trace-probe-chars 50 --no-progress --seed 2 --out "f$layers" >"f$layers.out" 2>&1
    check "layers $layers: --trace-every wrote the traces of steps 150 and 300 (50 validation examples)" \
        "$PY" -c "
import h5py, sys
f = h5py.File('f$layers/trace_features-00000300.h5', 'r')
sys.exit(not (f.attrs['n_examples'] == 50 and f.attrs['split'] == 'val' and f['prob'].shape == (50, 2)
              and h5py.is_hdf5('f$layers/trace_features-00000150.h5')))"
    "$CHARNN" trace --model "f$layers/model.h5" --data bp.h5 --split val --out "ft$layers.h5" >/dev/null 2>&1
    "$CHARNN" eval --model "f$layers/model.h5" --data bp.h5 --split val --json >"fe$layers.json"
    check "layers $layers: the features trace has the documented shapes and eval's loss and accuracy" \
        "$PY" - "$layers" <<'PY'
import h5py, json, numpy as np, sys
L = int(sys.argv[1])
f = h5py.File(f"ft{L}.h5", "r")
d = json.load(open(f"fe{L}.json"))
x = h5py.File("bp.h5", "r")
E = int(f.attrs["n_examples"])
p, loss, lab, pred = f["prob"][:], f["loss"][:].astype(np.float64), f["labels"][:], f["pred"][:]
idx = f["example_index"][:]
names = [s.decode() for s in f["label_names"][:]]
ok = (f.attrs["kind"] == "features" and f.attrs["layers"] == L and E == 150 == d["examples"] and
      f["features"].shape == (E, 3) and np.array_equal(f["features"][:], x["features"][:][idx]) and
      [names[c] for c in lab] == [x["label_names"][i].decode() for i in x["labels"][:][idx]] and
      np.allclose(p.sum(1), 1, atol=1e-5) and np.array_equal(pred, p.argmax(1)) and
      np.allclose(loss, -np.log(p[np.arange(E), lab]), rtol=1e-5, atol=1e-6) and
      f["layer0/h"].shape == (E, 16) and f["layer0/label_corr"].shape == (2, 16) and
      ("layer0/c" in f) == (L == 1))
ok = ok and abs(loss.mean() - d["loss"]) <= 1e-5 * d["loss"] and abs((pred == lab).mean() - d["accuracy"]) < 1e-6
print(f"    # trace {loss.mean():.7f}, eval {d['loss']:.7f}; accuracy {(pred == lab).mean():.4f}")
sys.exit(not ok)
PY
    "$CHARNN" analyze --json "ft$layers.h5" >"fa$layers.json" 2>&1
    check "layers $layers: analyze finds the units that follow the class (|r| >= 0.8)" "$PY" - "$layers" <<'PY'
import json, sys
d = json.load(open(f"fa{sys.argv[1]}.json"))
u = d["units"]["normal"] if "normal" in d["units"] else d["units"]["high"]
print(f"    # top unit {u[0]}")
sys.exit(not (d["kind"] == "features" and abs(u[0]["r"]) >= 0.8 and d["accuracy"] >= 0.95))
PY
done
"$CHARNN" analyze ft0.h5 >fa.txt 2>&1
check "analyze's text names the MLP: $(head -1 fa.txt)" has fa.txt "(features; MLP, 16 hidden, model 'f0/model.h5' at step 300): 150 examples of 3 features, 2 classes"
"$CHARNN" trace --model f0/model.h5 --data bp.h5 --split test --out no.h5 >no.out 2>&1
check "a split it has not is refused: $(cat no.out)" test "$(cat no.out)" = \
    "charnn: 'bp.h5' has no test examples (its split is 450 train, 150 val, no test)"
check "and leaves no file" test ! -e no.h5

# ---- --layers 0 needs --features --------------------------------------------
"$PY" -c "print('the quick brown fox jumps over the lazy dog ' * 40)" >text.txt
for spec in "lm text.txt" "classify ex.h5" "generate ex.h5"; do
    set -- $spec
    "$CHARNN" train --task "$1" --data "$2" --layers 0 --steps 1 --out "l0_$1" >"l0_$1.out" 2>&1
    status=$?
    check "--task $1 --layers 0 exits 1 (got $status) with one message: $(tail -1 "l0_$1.out")" \
        test "$status" -eq 1 -a "$(tail -1 "l0_$1.out")" = \
        "charnn: --layers 0 (a plain MLP, no recurrent stack) is only for --task classify --features"
done

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
