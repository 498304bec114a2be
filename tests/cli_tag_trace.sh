#!/usr/bin/env bash
# Traces of taggers (`charnn trace`, `train --task tag --trace-every`) and
# `charnn analyze` on them, on a generated spacing set where a space follows
# every "x" (so the tag B of a character is the indicator of "x", except at a
# line's end):
#  1. shapes: per character tokens, gold tags (the tag file's), predictions
#     (argmax of the probabilities, which are distributions), h and c of
#     every layer; h_reverse and c_reverse for a bidirectional model only.
#  2. the recorded states and probabilities are the model's: recomputed
#     independently in PyTorch from the checkpoint's weights (every layer and
#     direction, one nn.LSTM/GRU layer at a time), to 1e-5; tracing the same
#     sentences as plain text gives the same bits, and its predictions are
#     the tags `charnn tag` prints.
#  3. analyze: the planted rule shows as a unit whose h follows tag B with
#     |r| >= 0.9, as text and --json (with the direction of each unit).
#  4. train --trace-every writes DIR/trace_tag-<step>.h5 of whole validation
#     examples within --trace-probe-chars.
#  5. a tagger without gold tags on plain text correlates with its
#     predictions, and says so.
#  6. bad input: an unknown character fails by exact text and exit status
#     and leaves an existing trace untouched; --split on plain text.
# PyTorch checks are skipped without python3-torch (the rest still runs).
#
#   bash tests/cli_tag_trace.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_tag_trace.sh CHARNN SOURCE_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
WORK=$PWD/cli_tag_trace.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1
py=/usr/bin/python3
if ! $py -c 'import h5py, numpy' 2>/dev/null; then
    echo "skipped: python3-h5py is not installed"
    exit 77
fi
have_torch=0
$py -c 'import torch' 2>/dev/null && have_torch=1

$py - <<'PY'
import random
r = random.Random(7)
with open("x.txt", "w") as f, open("xy.tsv", "w") as g:
    g.write("text\ttags:NY\n")
    for _ in range(1200):
        n = r.randint(8, 30)
        s, t = "", ""
        for i in range(n):
            c = r.choice("abcx")
            s += c
            if c == "x" and i < n - 1:
                s += " "
        f.write(s + "\n")
        u = s.replace(" ", "")
        g.write("%s\t%s\n" % (u, "".join("Y" if c == "x" else "N" for c in u)))
PY
"$CHARNN" prepare --task tag --derive spacing x.txt --out x.h5 --val-frac 0.1 --test-frac 0.1 \
    >prep.log 2>&1
check "prepare the spacing set (exit $?)" test -s x.h5 || show prep.log
common=(--task tag --data x.h5 --batch 16 --lr 0.02 --eval-every 0 --log-every 100 --threads 1
        --no-progress)
"$CHARNN" train "${common[@]}" --cell lstm --layers 2 --hidden 8 --embed 8 --bidirectional \
    --steps 150 --trace-every 75 --trace-probe-chars 300 --out bi >bi.log 2>&1
check "a bidirectional LSTM tagger trains with --trace-every (exit $?)" test -s bi/model.h5 ||
    show bi.log
"$CHARNN" train "${common[@]}" --cell gru --layers 1 --hidden 8 --steps 150 --out uni >uni.log 2>&1
check "a unidirectional one-hot GRU tagger trains (exit $?)" test -s uni/model.h5 || show uni.log

# ---- 1. shapes -------------------------------------------------------------
for m in bi uni; do
    "$CHARNN" trace --model $m/model.h5 --data x.h5 --split test --out $m.h5 >$m.trace.log 2>&1
    check "charnn trace on the $m tagger (exit $?): $(cat $m.trace.log)" \
        grep -qE "^trace of 120 examples \([0-9]+ characters, test of 'x.h5'\) by '$m/model.h5' written to '$m.h5': accuracy [01]\.[0-9]{4} over [0-9]+ tagged characters; unit [0-9]+ of layer [0-9]+( \(reverse\))? follows tag '[BI]' most \(r = -?[0-9.]+\)$" $m.trace.log
done
cat >shapes.py <<'PY'
import sys
import h5py
import numpy as np
trace, data, L, H, D, lstm = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
with h5py.File(trace, "r") as f, h5py.File(data, "r") as x:
    a = f.attrs
    assert a["kind"] == "tag" and a["split"] == "test" and a["source"] == data, dict(a)
    assert (int(a["layers"]), int(a["hidden"]), int(a["directions"])) == (L, H, D)
    assert int(a["n_tags"]) == 2 and int(a["spacing"]) == 1 and a["corr_with"] == "gold"
    b, e = int(x.attrs["test_begin"]), int(x.attrs["test_end"])
    xo = x["offsets"][b:e + 1]
    N, E = int(xo[-1] - xo[0]), e - b
    assert (int(a["n_steps"]), int(a["n_examples"])) == (N, E)
    assert list(f["offsets"][:]) == list(xo - xo[0])
    assert list(f["example_index"][:]) == list(range(b, e))
    assert [s.decode() for s in f["tag_names"][:]] == ["B", "I"]
    assert np.array_equal(f["tokens"][:], x["tokens"][xo[0]:xo[-1]])
    assert np.array_equal(f["tags"][:], x["tags"][xo[0]:xo[-1]].astype(np.int32))
    p = f["prob"][:]
    assert p.shape == (N, 2) and np.allclose(p.sum(1), 1, atol=1e-5) and (p >= 0).all()
    assert np.array_equal(f["pred"][:], p.argmax(1))
    names = set(f["layer0"].keys())
    want = {"h", "tag_corr"} | ({"c"} if lstm else set())
    if D == 2:
        want |= {n + "_reverse" for n in want}
    assert names == want, (names, want)
    for l in range(L):
        for n in want - {"tag_corr", "tag_corr_reverse"}:
            assert f["layer%d/%s" % (l, n)].shape == (N, H)
        assert f["layer%d/tag_corr" % l].shape == (2, H)
PY
check "the bidirectional trace has every layer's h, c, h_reverse, c_reverse of every character" \
    $py shapes.py bi.h5 x.h5 2 8 2 1
check "the unidirectional trace has h of every character and no reverse direction" \
    $py shapes.py uni.h5 x.h5 1 8 1 0

# ---- 2. the same numbers as the model -----------------------------------------
cat >recompute.py <<'PY'
# Recompute a tag trace from the checkpoint's weights in PyTorch, one layer
# (both directions) at a time: every h, the final c of each direction, and
# the tag probabilities. Prints the largest difference.
import sys
import h5py
import numpy as np
import torch
model, trace = sys.argv[1], sys.argv[2]
with h5py.File(model, "r") as f:
    a = f.attrs
    cell, L, H, V, E = a["cell"], int(a["layers"]), int(a["hidden"]), int(a["vocab_size"]), int(a["embed"])
    bi = bool(int(a["bidirectional"]))
    t = {n: torch.from_numpy(f["model"][n][:]) for n in f["model"]}
cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
D = 2 if bi else 1
layers = []
for l in range(L):
    m = cls(input_size=(E if E else V) if l == 0 else D * H, hidden_size=H, bidirectional=bi)
    sfx = ["", "_reverse"][:D]
    m.load_state_dict({"%s_l0%s" % (w, s): t["%s_l%d%s" % (w, l, s)]
                       for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for s in sfx})
    layers.append(m)
lin = torch.nn.Linear(D * H, 2)
lin.load_state_dict({"weight": t["tagger.weight"], "bias": t["tagger.bias"]})
worst = 0.0
with h5py.File(trace, "r") as f, torch.no_grad():
    off, tok = f["offsets"][:], torch.from_numpy(f["tokens"][:].astype("int64"))
    hs = [[f["layer%d/h%s" % (l, s)][:] for s in ["", "_reverse"][:D]] for l in range(L)]
    cs = [[f["layer%d/c%s" % (l, s)][:] for s in ["", "_reverse"][:D]] for l in range(L)] \
        if cell == "lstm" else None
    prob = f["prob"][:]
    for i in range(len(off) - 1):
        lo, hi = int(off[i]), int(off[i + 1])
        ids = tok[lo:hi]
        x = (torch.nn.functional.embedding(ids, t["embedding.weight"]) if E
             else torch.nn.functional.one_hot(ids, V).float()).unsqueeze(1)
        for l, m in enumerate(layers):
            x, state = m(x)
            out = x.squeeze(1).numpy()
            for d in range(D):
                worst = max(worst, np.abs(out[:, d * H:(d + 1) * H] - hs[l][d][lo:hi]).max())
            if cs is not None:  # c_n: the forward's at the last character, the reverse's at the first
                c_n = state[1].squeeze(1).numpy()
                worst = max(worst, np.abs(c_n[0] - cs[l][0][hi - 1]).max())
                if D == 2:
                    worst = max(worst, np.abs(c_n[1] - cs[l][1][lo]).max())
        p = torch.softmax(lin(x.squeeze(1)), 1).numpy()
        worst = max(worst, np.abs(p - prob[lo:hi]).max())
print("%.3g" % worst)
PY
if [ "$have_torch" = 1 ]; then
    for m in bi uni; do
        d=$($py recompute.py $m/model.h5 $m.h5 2>&1)
        check "PyTorch recomputes the $m trace's states and probabilities: max difference $d <= 1e-5" \
            awk -v d="$d" 'BEGIN { exit !(d + 0 == d && d <= 1e-5) }'
    done
else
    echo "# PyTorch checks skipped: python3-torch is not installed"
fi
# the test split as spaced text, then traced as text and tagged by charnn tag
$py - <<'PY'
import h5py
with h5py.File("bi.h5", "r") as f:
    v, tok, tags, off = f["vocab"][:], f["tokens"][:], f["tags"][:], f["offsets"][:]
with open("test.txt", "w") as o:
    for i in range(len(off) - 1):
        o.write("".join(chr(v[tok[k]]) + (" " if tags[k] == 0 else "")
                        for k in range(off[i], off[i + 1])) + "\n")
PY
"$CHARNN" trace --model bi/model.h5 --data test.txt --out bi_text.h5 >text.log 2>&1
check "charnn trace on plain text (exit $?): $(cat text.log)" \
    grep -qE "^trace of 120 examples \([0-9]+ characters, plain text of 'test.txt'\)" text.log
same_bits() { for d in /prob /tags /layer0/c /layer1/h_reverse; do h5diff -q bi.h5 bi_text.h5 $d || return 1; done; }
check "plain text gives the bits of the tag file: /prob, /tags, /layer0/c, /layer1/h_reverse" same_bits
check "a plain-text trace says so" test "$($py -c "import h5py; print(h5py.File('bi_text.h5','r').attrs['split'])")" = text
"$CHARNN" tag --model bi/model.h5 test.txt >tagged.tsv
$py - >trace_tags.txt <<'PY'
import h5py
with h5py.File("bi_text.h5", "r") as f:
    pred, off = f["pred"][:], f["offsets"][:]
for i in range(len(off) - 1):
    p = pred[off[i]:off[i + 1]]
    # charnn tag never puts a space after a line's last character
    print("".join("B" if t == 0 and k + 1 < len(p) else "I" for k, t in enumerate(p)))
PY
check "the trace's predictions are the tags charnn tag prints" \
    diff <(cut -f2 tagged.tsv) trace_tags.txt

# ---- 3. analyze finds the planted unit ------------------------------------------
for m in bi uni; do
    "$CHARNN" analyze $m.h5 >$m.an 2>&1
    check "charnn analyze on the $m tag trace (exit $?)" \
        has $m.an "units whose h follows a tag (Pearson r over the characters, with the gold tag)"
    check "it reports the spaces' precision, recall and F1" \
        grep -qE '^spaces \(tag B\): precision [01]\.[0-9]{4} recall [01]\.[0-9]{4} F1 [01]\.[0-9]{4}' $m.an
    "$CHARNN" analyze --json --top 3 $m.h5 >$m.json
    r=$($py -c "import json,sys; u=json.load(open('$m.json'))['units']['B']; assert len(u)==3; print(abs(u[0]['r']))")
    check "a unit of the $m model follows 'a space follows' (|r| = $r >= 0.9)" \
        awk -v r="$r" 'BEGIN { exit !(r + 0 >= 0.9) }'
done
check "the JSON names each unit's direction" grep -q '"direction":"reverse"' bi.json
check "and its spacing scores" grep -qE '"spaces":\{"precision":[01]\.[0-9]+,"recall"' bi.json
check "the table names reverse units" grep -qE '^  B +layer [0-9] (reverse )?unit' bi.an

# ---- 4. train --trace-every ----------------------------------------------------
check "train --trace-every 75 writes a tag trace at steps 75 and 150" \
    test -s bi/trace_tag-00000075.h5 -a -s bi/trace_tag-00000150.h5
check "of whole validation examples within --trace-probe-chars 300" $py -c "
import h5py
f = h5py.File('bi/trace_tag-00000150.h5', 'r'); a = f.attrs
assert a['split'] == 'val' and a['model'] == 'bi' and int(a['model_step']) == 150
assert 0 < int(a['n_steps']) <= 300 and f['offsets'][-1] == int(a['n_steps'])
assert f['layer1/h_reverse'].shape == (int(a['n_steps']), 8)"

# ---- 5. no gold tags -----------------------------------------------------------
"$CHARNN" prepare --task tag xy.tsv --out xy.h5 --val-frac 0.1 --test-frac 0 >/dev/null 2>&1
"$CHARNN" train --task tag --data xy.h5 --cell gru --layers 1 --hidden 8 --steps 40 --batch 16 \
    --lr 0.02 --eval-every 0 --log-every 100 --threads 1 --no-progress --out xy >xy.log 2>&1
check "a tagger with tags N, Y trains (exit $?)" test -s xy/model.h5 || show xy.log
tr -d ' ' <test.txt >plain.txt
"$CHARNN" trace --model xy/model.h5 --data plain.txt --out xy.h5t >xy.trace.log 2>&1
check "its plain-text trace has no accuracy: $(cat xy.trace.log)" \
    grep -qE "written to 'xy.h5t': unit [0-9]+ of layer 0 follows tag '[NY]' most" xy.trace.log
check "no gold tags (-1) and correlation with the predictions" $py -c "
import h5py
f = h5py.File('xy.h5t', 'r')
assert (f['tags'][:] == -1).all() and f.attrs['corr_with'] == 'pred' and f.attrs['spacing'] == 0"
"$CHARNN" analyze xy.h5t >xy.an 2>&1
check "analyze says the units follow the predicted tags" \
    has xy.an "no gold tags: the units are correlated with the predicted tags"

# ---- 6. bad input ------------------------------------------------------------------
cp bi.h5 keep.h5
printf 'abx c\nab?c\n' >bad.txt
"$CHARNN" trace --model bi/model.h5 --data bad.txt --out bi.h5 >out 2>err
status=$?
check "an unknown character exits 1 (got $status)" test "$status" -eq 1
check "and names the line: $(cat err)" \
    test "$(cat err)" = "charnn: 'bad.txt' line 2: character '?' is not in the model's vocabulary"
untouched() { cmp -s bi.h5 keep.h5 && [ -z "$(ls bi.h5.tmp* 2>/dev/null)" ]; }
check "the existing trace is untouched and no temporary is left" untouched
"$CHARNN" trace --model bi/model.h5 --data test.txt --split val --out t.h5 >out 2>err
status=$?
check "--split on plain text exits 1 (got $status): $(cat err)" test "$status" -eq 1 -a \
    "$(cat err)" = "charnn: 'test.txt' is plain text, traced whole: --split applies to tag files"
"$CHARNN" trace --model bi/model.h5 --data x.h5 --split val --grads --out t.h5 >out 2>err
check "--grads on a tagger is refused: $(cat err)" \
    test "$(cat err)" = "charnn: --grads and --lstmvis trace language models; 'bi/model.h5' is a tagger"

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
