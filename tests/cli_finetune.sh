#!/usr/bin/env bash
# Fine-tuning: train --init-from / --extend-vocab / --freeze-stack.
#   - a language model fine-tuned on a new text gets lower losses there than
#     training from scratch with the same flags and steps (metrics.jsonl);
#   - --extend-vocab copies every known symbol's rows bit for bit (one-hot and
#     embedding input, decoder) and gives the new symbols fresh rows;
#   - without it, a character the model lacks is an error naming file and line;
#   - --freeze-stack N leaves the stack bit-identical for N updates, then moves
#     it; a run with it resumes bit-identically, and refuses another N;
#   - shape flags that disagree with the model are errors naming both.
#
#   bash tests/cli_finetune.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_finetune.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_finetune.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import h5py, numpy' 2>/dev/null; then
    echo "skipped: python3-h5py is not installed"
    exit 77
fi
TEXT=$SRC/../shared/data/tinyshakespeare.txt
if [ ! -f "$TEXT" ]; then
    echo "skipped: $TEXT is missing"
    exit 77
fi
WORK=$PWD/cli_finetune.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# the source text and a new one (the end of the play, never seen in training)
head -c 200000 "$TEXT" >a.txt
tail -c 40000 "$TEXT" >b.txt
cp b.txt bx.txt
printf 'un caf\xc3\xa9 na\xc3\xafve\n' >>bx.txt
common=(--seq 32 --batch 16 --threads 1 --no-progress --log-every 5)

"$CHARNN" train --data a.txt --out lm "${common[@]}" --layers 1 --hidden 64 --lr 1e-2 \
    --steps 300 --eval-every 300 >lm.log 2>&1
check "source language model trains" test -f lm/model.h5 || { show lm.log; exit 1; }
"$CHARNN" train --data a.txt --out lme "${common[@]}" --cell gru --layers 1 --hidden 16 \
    --embed 8 --steps 3 >lme.log 2>&1
check "source model with an embedding trains" test -f lme/model.h5 || show lme.log

# ---- fine-tuning beats training from scratch on the new text -------------
ft=(--data b.txt "${common[@]}" --lr 1e-2 --steps 40 --eval-every 20)
"$CHARNN" train "${ft[@]}" --out scratch --layers 1 --hidden 64 >scratch.log 2>&1
"$CHARNN" train "${ft[@]}" --out tuned --init-from lm/model.h5 >tuned.log 2>&1
check "fine-tuning runs" has tuned.log "initialised 6 of 6 tensors from 'lm/model.h5'" ||
    show tuned.log
# mean training loss over the logged steps, and the last validation loss
"$PY" - scratch/metrics.jsonl tuned/metrics.jsonl >compare.txt <<'EOF'
import json, sys
def read(path):
    rows = [json.loads(l) for l in open(path)]
    train = [r["loss"] for r in rows if r["type"] == "train"]
    val = [r["val_loss"] for r in rows if r["type"] == "val"]
    return sum(train) / len(train), train[0], val[-1]
s, t = read(sys.argv[1]), read(sys.argv[2])
print("scratch mean %.4f first %.4f val %.4f" % s)
print("tuned mean %.4f first %.4f val %.4f" % t)
ok = t[0] < s[0] - 0.3 and t[1] < s[1] - 0.3 and t[2] < s[2] - 0.1
print("faster" if ok else "not faster")
EOF
check "fine-tuned: lower mean loss, first loss and final validation loss than scratch" \
    has compare.txt "faster"
sed 's/^/# /' compare.txt

# ---- a character the model lacks ----------------------------------------
"$CHARNN" train --data bx.txt --out bad --init-from lm/model.h5 "${common[@]}" --steps 1 \
    >bad.out 2>bad.err
rc=$?
check "missing character: exit 1" test "$rc" = 1
line=$(wc -l <b.txt | tr -d ' ')
bytes=$(wc -c <b.txt | tr -d ' ')
check "missing character: one line naming file, line and character" \
    test "$(cat bad.err)" = "charnn: --init-from 'lm/model.h5' (--extend-vocab adds what it lacks): 'bx.txt' line $((line + 1)) (byte $((bytes + 6))): character 'é' (U+00E9) is not in the model's vocabulary" ||
    show bad.err
check "missing character: nothing written" test ! -e bad/model.h5

# ---- --extend-vocab: known rows bit for bit, new rows fresh --------------
for src in lm lme; do
    "$CHARNN" train --data bx.txt --out ext-$src --init-from $src/model.h5 --extend-vocab \
        "${common[@]}" --steps 1 --lr 0 >ext-$src.log 2>&1
    check "extend-vocab from $src: 2 new symbols" has ext-$src.log "2 new symbols start fresh" ||
        show ext-$src.log
    "$PY" - $src/model.h5 ext-$src/model.h5 >ext-$src.txt <<'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
va, vb = list(a["vocab"][:]), list(b["vocab"][:])
assert vb == sorted(set(va) | {0xE9, 0xEF}), "vocabulary is the union"
new = [i for i, s in enumerate(vb) if s not in va]
old = {s: i for i, s in enumerate(va)}
# the vocabulary axis of each tensor in PyTorch's layout
axes = {"weight_ih_l0": 1, "embedding.weight": 0, "decoder.weight": 0, "decoder.bias": 0}
for name in b["model"]:
    x, y = a["model"][name][...], b["model"][name][...]
    if name == "weight_ih_l0" and "embedding.weight" in b["model"]:
        assert np.array_equal(x, y), name
        continue
    if name not in axes:
        assert np.array_equal(x, y), name
        continue
    ax = axes[name]
    for i, s in enumerate(vb):
        yr = np.take(y, i, axis=ax)
        if s in old:
            assert np.array_equal(np.take(x, old[s], axis=ax), yr), (name, s)
        else:
            assert np.all(np.abs(yr) <= 0.08) and np.any(yr != 0), (name, s)
    print("checked", name)
print("ok", len(new), "new")
EOF
    check "extend-vocab from $src: known rows copied bit for bit, new rows fresh" \
        has ext-$src.txt "ok 2 new" || show ext-$src.txt
done

# ---- --freeze-stack: the stack stays put for N updates, then moves --------
frz=(--data b.txt --init-from lm/model.h5 "${common[@]}" --lr 1e-2 --freeze-stack 3
     --eval-every 100 --checkpoint-every 1 --keep-last 0)
"$CHARNN" train "${frz[@]}" --out frz --steps 6 >frz.log 2>&1
"$PY" - lm/model.h5 frz >frz.txt <<'EOF'
import sys, h5py, numpy as np
src = h5py.File(sys.argv[1], "r")
stack = [n for n in src["model"] if not n.startswith("decoder")]
for step in range(1, 7):
    name = "ckpt-%08d.h5" % step if step < 6 else "model.h5"
    f = h5py.File("%s/%s" % (sys.argv[2], name), "r")
    same = all(np.array_equal(src["model"][n][...], f["model"][n][...]) for n in stack)
    head = any(not np.array_equal(src["model"][n][...], f["model"][n][...])
               for n in ("decoder.weight", "decoder.bias"))
    print(step, "stack", "same" if same else "moved", "head", "moved" if head else "same")
EOF
check "freeze-stack 3: stack bit-identical for 3 updates, moved after; head moves from step 1" \
    test "$(cat frz.txt)" = "1 stack same head moved
2 stack same head moved
3 stack same head moved
4 stack moved head moved
5 stack moved head moved
6 stack moved head moved" || show frz.txt

# resume: 2 steps, then resume to 6, equals 6 straight; the resumed run does
# not read --init-from again (here a file that is gone)
"$CHARNN" train "${frz[@]}" --out frz-r --steps 2 >frz-r1.log 2>&1
"$CHARNN" train "${frz[@]}" --init-from gone.h5 --out frz-r --steps 6 --resume auto \
    >frz-r2.log 2>&1
check "freeze resume: --init-from is not read again" \
    has frz-r2.log "resuming from 'frz-r/model.h5': --init-from 'gone.h5' is read only by a fresh run" ||
    show frz-r2.log
for g in /model /optimizer; do
    check "freeze resume: $g bit-identical to the straight run" \
        h5diff frz/model.h5 frz-r/model.h5 $g
done
"$CHARNN" train "${frz[@]}" --freeze-stack 4 --out frz-r --steps 8 --resume auto \
    >frz-r3.out 2>frz-r3.err
rc=$?
check "resume with another --freeze-stack: exit 1, one line" \
    test "$rc" = 1 -a "$(cat frz-r3.err)" = "charnn: checkpoint 'frz-r/model.h5' was trained with --freeze-stack 3, this run asks for --freeze-stack 4" ||
    show frz-r3.err

# ---- shape and usage errors ----------------------------------------------
"$CHARNN" train --data b.txt --out mis --init-from lm/model.h5 --hidden 32 "${common[@]}" \
    --steps 1 >mis.out 2>mis.err
rc=$?
check "hidden mismatch: exit 1 naming both sizes" \
    test "$rc" = 1 -a "$(cat mis.err)" = "charnn: --init-from 'lm/model.h5' has hidden size 64, this run asks for --hidden 32" ||
    show mis.err
"$CHARNN" train --data b.txt --out mis2 --init-from lm/model.h5 --cell gru "${common[@]}" \
    --steps 1 >mis2.out 2>mis2.err
rc=$?
check "cell mismatch: exit 1 naming both cells" \
    test "$rc" = 1 -a "$(cat mis2.err)" = "charnn: --init-from 'lm/model.h5' has cell lstm, this run asks for --cell gru" ||
    show mis2.err
"$CHARNN" train --data b.txt --out mis3 --extend-vocab --steps 1 >/dev/null 2>mis3.err
rc=$?
check "--extend-vocab without --init-from: usage error" \
    test "$rc" = 2 && has mis3.err "--extend-vocab needs --init-from"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
