#!/usr/bin/env bash
# Conditional generation end to end (the model's conditioning is tested in
# test_cond.c): `train --task generate` on a small class folder in every
# --cond-mode resumes bit-identical; 2 ranks x 4 rows make the step of 1 rank
# x 8 rows; the same model in PyTorch (docs/pytorch.md) gives the loss
# `charnn eval` reports (when python3-torch is there); vector conditions from
# an HDF5 /features, with the wrong count or width refused in one line;
# `sample --cond` with --count, --unique and --novel, unknown classes named.
#
#   bash tests/cli_generate.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_generate.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_generate.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
WORK=$PWD/cli_generate.d
rm -rf "$WORK"
mkdir -p "$WORK/names"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "skipped: python3-h5py is not installed"; exit 77; }

# two classes with different alphabets: soft names and hard names
"$PY" - <<'PY'
import random
r = random.Random(5)
for cls, letters in (("Soft", "aeilmnou"), ("Hard", "bdgkprtz")):
    names = set()
    while len(names) < 40:
        names.add("".join(r.choice(letters) for _ in range(r.randint(3, 7))).capitalize())
    open(f"names/{cls}.txt", "w").write("\n".join(sorted(names)) + "\n")
PY
"$CHARNN" prepare --task classify names --out ex.h5 --val-frac 0.2 --test-frac 0 >/dev/null
check "the folder prepares" test -s ex.h5

SMALL=(--task generate --data ex.h5 --hidden 8 --layers 2 --batch 8 --log-every 5
       --eval-every 10 --checkpoint-every 10 --no-progress --seed 3)
for mode in init input every; do
    "$CHARNN" train "${SMALL[@]}" --cond-mode "$mode" --out "full_$mode" --steps 20 >"full_$mode.out" 2>&1
    "$CHARNN" train "${SMALL[@]}" --cond-mode "$mode" --out "half_$mode" --steps 10 >/dev/null 2>&1
    "$CHARNN" train "${SMALL[@]}" --out "half_$mode" --steps 20 --resume auto >"half_$mode.out" 2>&1
    check "$mode: the header names the condition" has "full_$mode.out" "condition: 2 classes, mode $mode"
    check "$mode: 10 + 10 resumed steps equal 20 steps bit for bit" \
        h5diff -q "full_$mode/model.h5" "half_$mode/model.h5" /model /model
done
check "the checkpoint keeps the class names" \
    has <(h5dump -d /labels full_init/model.h5) '(0): "Hard", "Soft"'

if command -v mpiexec >/dev/null; then
    timeout -k 5 120 mpiexec -np 2 --oversubscribe "$CHARNN" train "${SMALL[@]}" --batch 4 \
        --out two --steps 10 --cond-mode every >two.out 2>&1
    "$CHARNN" train "${SMALL[@]}" --batch 8 --out one --steps 10 --cond-mode every >one.out 2>&1
    # the same rows and the same normalisation: the parameters agree to rounding
    check "2 ranks x 4 rows give the parameters of 1 rank x 8 rows" \
        h5diff -q -d 2e-5 two/model.h5 one/model.h5 /model /model
fi

if "$PY" -c 'import torch' 2>/dev/null; then
    for mode in init input every; do
        want=$("$CHARNN" eval --model "full_$mode/model.h5" --data ex.h5 --split all --json |
               "$PY" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
        got=$("$PY" "$SRC/tests/pytorch_generate.py" "full_$mode/model.h5" names)
        check "$mode: PyTorch's loss $got is charnn eval's $want" \
            "$PY" -c "import sys; sys.exit(abs($got - $want) > 1e-4 * abs($want))"
    done
else
    echo "# skipped the PyTorch comparison: python3-torch is not installed"
fi

"$CHARNN" eval --model full_init/model.h5 --data ex.h5 --split val --json >eval.json
check "eval --json reports both classes" \
    "$PY" -c 'import json; d = json.load(open("eval.json")); assert set(d["classes"]) == {"Soft", "Hard"} and d["tokens"] == sum(c["tokens"] for c in d["classes"].values())'

"$CHARNN" eval --model full_init/model.h5 --data ex.h5 --split val --html page.html >/dev/null
check "eval --html writes a row of 10 samples per class" \
    test "$(grep -c '^<tr><td>\(Hard\|Soft\)</td><td>[0-9.]*</td><td>' page.html)" -eq 2

# vector conditions: 3 features per example, the first the class
"$PY" - <<'PY'
import h5py, numpy as np
ex = h5py.File("ex.h5", "r")
n = len(ex["labels"])
f = np.random.RandomState(1).rand(n, 3).astype(np.float32)
f[:, 0] = ex["labels"][:]
h5py.File("feat.h5", "w")["features"] = f
h5py.File("short.h5", "w")["features"] = f[:-1]
PY
"$CHARNN" train "${SMALL[@]}" --cond-vectors short.h5 --out bad --steps 2 >bad.out 2>&1
status=$?
check "a /features of the wrong count exits 1 (got $status)" test "$status" -eq 1
check "and says so: $(tail -1 bad.out)" \
    has bad.out "charnn: 'short.h5': /features has 79 rows, ex.h5 has 80 examples"
"$CHARNN" train "${SMALL[@]}" --cond-vectors feat.h5 --cond-mode input --out vec --steps 10 >vec.out 2>&1
check "vectors train (exit $?)" has vec.out "condition: vectors of width 3 from 'feat.h5'"
printf '1 0.5 0.5\n' >v3.txt
printf '1 0.5\n' >v2.txt
check "a vector samples" "$CHARNN" sample --model vec/model.h5 --cond-vector v3.txt --count 3
"$CHARNN" sample --model vec/model.h5 --cond-vector v2.txt >out 2>err
check "a vector of the wrong width is refused: $(cat err)" \
    test "$(cat err)" = "charnn: 'v2.txt' holds 2 numbers, the model's condition has width 3"
if "$PY" -c 'import torch' 2>/dev/null; then
    want=$("$CHARNN" eval --model vec/model.h5 --data ex.h5 --cond-vectors feat.h5 --split all --json |
           "$PY" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
    got=$("$PY" "$SRC/tests/pytorch_generate.py" vec/model.h5 names feat.h5 ex.h5)
    check "vectors: PyTorch's loss $got is charnn eval's $want" \
        "$PY" -c "import sys; sys.exit(abs($got - $want) > 1e-4 * abs($want))"
fi

# sampling
"$CHARNN" sample --model full_init/model.h5 --cond Martian >out 2>err
status=$?
check "an unknown class exits 1 (got $status)" test "$status" -eq 1
check "and names the known ones: $(cat err)" \
    test "$(cat err)" = "charnn: unknown class 'Martian' for --cond (the model knows: Hard, Soft)"
"$CHARNN" sample --model full_init/model.h5 >out 2>err
check "a generator without --cond is refused: $(cat err)" \
    test "$(cat err)" = "charnn: 'full_init/model.h5' is a conditional generator: give --cond NAME or --cond-vector FILE"
"$CHARNN" sample --model full_init/model.h5 --cond Soft --count 7 --seed 4 >s7
check "--count 7 prints 7 lines" test "$(lines s7)" -eq 7
"$CHARNN" sample --model full_init/model.h5 --cond Soft --count 1 --seed 4 >s1
check "sample 0 is the same whatever the count" test "$(head -1 s7)" = "$(cat s1)"
"$CHARNN" sample --model full_init/model.h5 --cond Soft --count 20 --unique --temperature 0.5 >u 2>/dev/null
check "--unique prints 20 different lines" test "$(sort -u u | wc -l)" -eq 20
"$CHARNN" sample --model full_init/model.h5 --cond Soft --count 20 --prime Ma >p 2>/dev/null
check "--prime starts every sample" test "$(grep -c '^Ma' p)" -eq 20
"$PY" - <<'PY'
import h5py
ex = h5py.File("ex.h5", "r")
v = [chr(c) for c in ex["vocab"][:]]
o, t = ex["offsets"][:], ex["tokens"][:]
n = int(ex.attrs.get("n_train", 0)) or len(o) - 1
open("all_names.txt", "w").write("\n".join("".join(v[x] for x in t[o[i]:o[i + 1]]) for i in range(len(o) - 1)) + "\n")
PY
"$CHARNN" sample --model full_init/model.h5 --cond Soft --count 30 --novel --temperature 0.3 >nv 2>nv.err
check "--novel prints 30 lines" test "$(lines nv)" -eq 30
check "none of them a name of the file" test "$(grep -cxFf all_names.txt nv)" -eq 0
check "it reports the redrawn training names: $(cat nv.err)" \
    grep -q '^drew [0-9]* samples for 30 printed: 0 repeats redrawn, [0-9]* training texts redrawn' nv.err

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
