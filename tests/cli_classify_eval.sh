#!/usr/bin/env bash
# A classifier's eval (text, --json, --html in headless Chromium), predict, and a
# classifier started from a language model (--init-from, --freeze-stack), on a
# generated set: "does the line hold more 'a' than 'b'".
#   - eval --json's loss and accuracy equal the training's final validation;
#     its per-class numbers and macro-F1 follow from its confusion matrix; the
#     text output says the same; 2 ranks give the same matrix;
#   - the page has no script and nothing outside itself, one cell per
#     (true, predicted) pair with the matrix's counts, and Chromium paints the
#     darkest cell's colour;
#   - predict on the test split's texts gives eval's confusion matrix exactly;
#     top-k is sorted, sums to 1 over every class, labels are the model's;
#     an empty line is reported and keeps the lines aligned; a character outside
#     the vocabulary names the line; --json lines;
#   - --init-from a language model copies its stack and starts the head fresh,
#     --freeze-stack keeps the stack bit-identical, a symbol the model lacks
#     names the example, --extend-vocab adds it, a shape flag that disagrees
#     is refused.
#
#   bash tests/cli_classify_eval.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_classify_eval.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_classify_eval.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import h5py, numpy' 2>/dev/null; then
    echo "skipped: python3-h5py is not installed"
    exit 77
fi
WORK=$PWD/cli_classify_eval.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# ---- data: more 'a' than 'b' ("more_a") or fewer ("more_b"), no ties --------
"$PY" - <<'EOF'
import json, random
r = random.Random(7)
with open("ab.jsonl", "w") as f, open("ab.txt", "w") as g:
    n = 0
    while n < 1200:
        s = "".join(r.choice("abcd") for _ in range(r.randint(4, 24)))
        if s.count("a") == s.count("b"):
            continue
        f.write(json.dumps({"text": s, "label": "more_a" if s.count("a") > s.count("b") else "more_b"}) + "\n")
        g.write(s + "\n")
        n += 1
EOF
"$CHARNN" prepare --task classify ab.jsonl --val-frac 0.15 --test-frac 0.15 --out ab.h5 \
    >prep.log 2>&1
check "prepare the generated set" test -f ab.h5 || { show prep.log; exit 1; }
common=(--threads 1 --no-progress --log-every 20)
"$CHARNN" train --task classify --data ab.h5 --out cls --cell gru --layers 1 --hidden 32 \
    --batch 32 --lr 1e-2 --steps 40 --eval-every 40 "${common[@]}" >cls.log 2>&1
check "train the classifier" test -f cls/model.h5 || { show cls.log; exit 1; }

# ---- eval: text, JSON, 2 ranks ------------------------------------------------
"$CHARNN" eval --model cls/model.h5 --data ab.h5 --split val --json >val.json 2>val.err
"$CHARNN" eval --model cls/model.h5 --data ab.h5 --split test --json >test.json 2>test.err
"$CHARNN" eval --model cls/model.h5 --data ab.h5 --split test --html page.html >test.txt \
    2>test-txt.err
check "eval runs (json, text, html)" test -s val.json -a -s test.json -a -s test.txt -a -s page.html ||
    show test.err
"$PY" - <<'EOF' >eval_check.txt
import json
fails = []
def need(ok, what):
    if not ok: fails.append(what)
val = json.load(open("val.json"))
rows = [json.loads(l) for l in open("cls/metrics.jsonl")]
last = [r for r in rows if r["type"] == "val"][-1]
need(abs(val["loss"] - last["val_loss"]) < 1e-5, "val loss %r vs training's %r" % (val["loss"], last["val_loss"]))
need(abs(val["accuracy"] - last["val_acc"]) < 1e-9, "val accuracy %r vs training's %r" % (val["accuracy"], last["val_acc"]))
for name in ("val", "test"):
    d = json.load(open(name + ".json"))
    M, C = d["confusion"], len(d["classes"])
    n = sum(map(sum, M))
    need(n == d["examples"], "%s: matrix sums to %d of %d" % (name, n, d["examples"]))
    need(abs(d["accuracy"] - sum(M[i][i] for i in range(C)) / n) < 1e-6, name + " accuracy")
    f1s = []
    for c, k in enumerate(d["classes"]):
        tp, sup, pred = M[c][c], sum(M[c]), sum(M[i][c] for i in range(C))
        p = tp / pred if pred else 0.0
        r = tp / sup if sup else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f)
        need(k["support"] == sup and k["predicted"] == pred, "%s %s counts" % (name, k["label"]))
        need(abs(k["precision"] - p) < 1e-6 and abs(k["recall"] - r) < 1e-6 and abs(k["f1"] - f) < 1e-6,
             "%s %s P/R/F1" % (name, k["label"]))
    need(abs(d["macro_f1"] - sum(f1s) / C) < 1e-6, name + " macro-F1")
    need([k["label"] for k in d["classes"]] == ["more_a", "more_b"], name + " labels")
test = json.load(open("test.json"))
need(test["accuracy"] > 0.8, "test accuracy %.3f above 0.8 (the classes are about even)" % test["accuracy"])
text = open("test.txt").read()
need(("accuracy %.2f%%" % (100 * test["accuracy"])) in text and ("macro-F1 %.4f" % test["macro_f1"]) in text,
     "the text output says the JSON's accuracy and macro-F1")
need(all(str(v) in text for row in test["confusion"] for v in row), "the text shows the matrix")
for f in fails: print("    # " + f)
print("ok" if not fails else "failed")
EOF
check "eval: loss/accuracy equal training's validation; P/R/F1 and macro-F1 follow from the matrix" \
    has eval_check.txt "ok" || show eval_check.txt
timeout 120 mpiexec --oversubscribe -np 2 "$CHARNN" eval --model cls/model.h5 --data ab.h5 \
    --split test --json --batch 16 >test2.json 2>test2.err
"$PY" -c '
import json, sys
a, b = json.load(open("test.json")), json.load(open("test2.json"))
sys.exit(0 if a["confusion"] == b["confusion"] and abs(a["loss"] - b["loss"]) < 1e-6 else 1)'
check "eval on 2 ranks: the same confusion matrix and loss" test $? = 0 || show test2.err

# ---- the page ---------------------------------------------------------------
check "the page has no scripts" bash -c '! grep -qi "<script" page.html'
check "the page references nothing outside itself" \
    bash -c '! grep -Eqi "(src|href)=\"|url\(|@import" page.html'
browser=
for cand in chromium chromium-browser; do
    if command -v "$cand" >/dev/null 2>&1; then browser=$cand; break; fi
done
if [ -n "$browser" ]; then
    render() {
        timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --hide-scrollbars --user-data-dir="$(mktemp -d "$WORK/profile.XXXXXX")" "$@" \
            "file://$WORK/page.html"
    }
    render --screenshot="$WORK/shot.png" --window-size=900,800 >render.log 2>&1
    render --dump-dom >dom.html 2>dump.err
    check "chromium took a screenshot and dumped the DOM" test -s shot.png -a -s dom.html ||
        show render.log
    "$PY" - "$SRC/tests" <<'EOF' >page_check.txt
import json, re, sys
sys.path.insert(0, sys.argv[1])
from png_colors import png_color_set
fails = []
def need(ok, what):
    if not ok: fails.append(what)
dom = open("dom.html", encoding="utf-8").read()
test = json.load(open("test.json"))
M = test["confusion"]
svg = re.search(r'<svg[^>]*id="confusion"[^>]*>(.*?)</svg>', dom, re.S)
cells = re.findall(r'<rect class="cell" data-true="(\d+)" data-pred="(\d+)" data-count="(\d+)"[^>]*fill="(#[0-9a-f]{6})"',
                   svg.group(1) if svg else "")
need(len(cells) == 4, "%d heatmap cells, expected 4" % len(cells))
need(all(int(k) == M[int(i)][int(j)] for i, j, k, _ in cells), "cell counts are the matrix's")
# the darkest cell: the largest share of its row
share = lambda i, j: M[i][j] / max(1, sum(M[i]))
i, j = max(((i, j) for i in range(2) for j in range(2)), key=lambda ij: share(*ij))
fill = [c[3] for c in cells if int(c[0]) == i and int(c[1]) == j]
dark = (8, 48, 107)
want = "#%02x%02x%02x" % tuple(round(255 + share(i, j) * (d - 255)) for d in dark)
need(fill == [want], "darkest cell fill %s, expected %s" % (fill, want))
colors = png_color_set("shot.png", 1)
need(want in colors, "the screenshot shows the darkest cell's colour %s" % want)
need(len(colors) > 10, "the screenshot is not blank (%d colours)" % len(colors))
need(("%.2f%%" % (100 * test["accuracy"])) in dom, "the summary table's accuracy")
need(len(re.findall(r'<tr class="class-row">', dom)) == 2, "two per-class rows")
for f in fails: print("    # " + f)
print("ok" if not fails else "failed")
EOF
    check "the page: one cell per pair with the counts, the darkest colour painted" \
        has page_check.txt "ok" || show page_check.txt
else
    echo "chromium is not installed: the page is not rendered"
fi

# ---- predict ----------------------------------------------------------------
# the test split's texts and labels, from the examples file
"$PY" - <<'EOF'
import h5py
f = h5py.File("ab.h5", "r")
tok, off, lab = f["tokens"][...], f["offsets"][...], f["labels"][...]
vocab, names = f["vocab"][...], [n.decode() for n in f["label_names"][...]]
b, e = int(f.attrs["test_begin"]), int(f.attrs["test_end"])
with open("test_texts.txt", "w") as t, open("test_labels.txt", "w") as l:
    for i in range(b, e):
        t.write("".join(chr(vocab[k]) for k in tok[off[i]:off[i + 1]]) + "\n")
        l.write(names[lab[i]] + "\n")
EOF
"$CHARNN" predict --model cls/model.h5 test_texts.txt --top-k 2 --batch 7 >pred.tsv 2>pred.err
check "predict runs" test -s pred.tsv || show pred.err
"$PY" - <<'EOF' >pred_check.txt
import json
fails = []
def need(ok, what):
    if not ok: fails.append(what)
test = json.load(open("test.json"))
names = [k["label"] for k in test["classes"]]
truth = [l.strip() for l in open("test_labels.txt")]
pred = [l.rstrip("\n").split("\t") for l in open("pred.tsv")]
need(len(pred) == len(truth), "%d predictions for %d lines" % (len(pred), len(truth)))
M = [[0, 0], [0, 0]]
for p, t in zip(pred, truth):
    need(len(p) == 4 and p[0] in names and p[2] in names and p[0] != p[2], "row %r" % p)
    pa, pb = float(p[1]), float(p[3])
    need(pa >= pb, "top-k sorted: %r" % p)
    need(abs(pa + pb - 1) < 2e-6, "probabilities of both classes sum to 1: %r" % p)
    M[names.index(t)][names.index(p[0])] += 1
need(M == test["confusion"], "predict's confusion %r equals eval's %r" % (M, test["confusion"]))
for f in fails[:5]: print("    # " + f)
print("ok" if not fails else "failed")
EOF
check "predict: eval's confusion matrix exactly; top-k sorted, summing to 1, the model's labels" \
    has pred_check.txt "ok" || show pred_check.txt

printf 'aab\n\nbbbbc\r\n' | "$CHARNN" predict --model cls/model.h5 - >empty.tsv 2>empty.err
rc=$?
check "predict: an empty line is reported and keeps lines aligned" \
    test "$rc" = 0 -a "$(wc -l <empty.tsv)" = 3 -a -z "$(sed -n 2p empty.tsv)" -a \
    "$(cat empty.err)" = "charnn: warning: '<stdin>' line 2 is empty: no prediction" || show empty.err
check "predict: the two sure ones" test "$(cut -f1 empty.tsv | tr '\n' ' ')" = "more_a  more_b "
printf 'aab\nabxa\n' >oov.txt
"$CHARNN" predict --model cls/model.h5 oov.txt >oov.out 2>oov.err
rc=$?
check "predict: a character outside the vocabulary names the line, exit 1" \
    test "$rc" = 1 -a "$(cat oov.err)" = "charnn: 'oov.txt' line 2 (character 3): character 'x' (U+0078) is not in the model's vocabulary" ||
    show oov.err
printf 'aaab\n' | "$CHARNN" predict --model cls/model.h5 --json --top-k 5 >one.json 2>one.err
"$PY" -c '
import json, sys
d = json.loads(open("one.json").read())
ok = d["line"] == 1 and d["label"] == "more_a" and len(d["top"]) == 2 and d["top"][0]["label"] == "more_a" \
     and abs(sum(t["probability"] for t in d["top"]) - 1) < 2e-6 and d["probability"] == d["top"][0]["probability"]
sys.exit(0 if ok else 1)'
check "predict --json: line, label, probability, top-k capped at the classes" test $? = 0 ||
    show one.json
"$CHARNN" predict --model cls/model.h5 - -x >/dev/null 2>usage.err </dev/null
check "predict: a stray flag is a usage error" test $? = 2

# ---- a classifier from a language model ---------------------------------------
"$CHARNN" train --data ab.txt --out lm --cell gru --layers 1 --hidden 32 --embed 8 --seq 16 \
    --batch 8 --steps 30 --eval-every 30 "${common[@]}" >lm.log 2>&1
check "train a language model on the texts" test -f lm/model.h5 || show lm.log
"$CHARNN" train --task classify --data ab.h5 --out tl --init-from lm/model.h5 --freeze-stack 2 \
    --batch 32 --lr 1e-2 --steps 3 --eval-every 100 --checkpoint-every 1 --keep-last 0 \
    "${common[@]}" >tl.log 2>&1
check "init-from an LM: stack copied, head fresh" \
    has tl.log "initialised 5 of 7 tensors from 'lm/model.h5' (the head starts fresh)" || show tl.log
"$PY" - <<'EOF' >tl_check.txt
import h5py, numpy as np
lm = h5py.File("lm/model.h5", "r")
out = []
for step, name in ((1, "tl/ckpt-00000001.h5"), (2, "tl/ckpt-00000002.h5"), (3, "tl/model.h5")):
    f = h5py.File(name, "r")
    stack = [n for n in f["model"] if not n.startswith("classifier")]
    same = all(np.array_equal(lm["model"][n][...], f["model"][n][...]) for n in stack)
    out.append("%d %s %d" % (step, "same" if same else "moved", len(stack)))
print(" ".join(out))
EOF
check "freeze-stack 2 on a classifier: stack bit-identical for 2 updates, moved at 3" \
    test "$(cat tl_check.txt)" = "1 same 5 2 same 5 3 moved 5" || show tl_check.txt
"$CHARNN" train --task classify --data ab.h5 --out tl2 --init-from lm/model.h5 --hidden 64 \
    --steps 1 "${common[@]}" >tl2.out 2>tl2.err
rc=$?
check "init-from with another --hidden: exit 1 naming both" \
    test "$rc" = 1 -a "$(cat tl2.err)" = "charnn: --init-from 'lm/model.h5' has hidden size 32, this run asks for --hidden 64" ||
    show tl2.err
printf '{"text":"abba","label":"x"}\n{"text":"aaeb","label":"y"}\n{"text":"ab","label":"y"}\n{"text":"bab","label":"x"}\n' >e.jsonl
"$CHARNN" prepare --task classify e.jsonl --out e.h5 >/dev/null 2>&1
"$CHARNN" train --task classify --data e.h5 --out tl3 --init-from lm/model.h5 --batch 2 \
    --steps 1 "${common[@]}" >tl3.out 2>tl3.err
rc=$?
check "init-from, a symbol the LM lacks: exit 1 naming the example" \
    test "$rc" = 1 && has tl3.err "example " && has tl3.err "character 'e' (U+0065) is not in the model's vocabulary" ||
    show tl3.err
"$CHARNN" train --task classify --data e.h5 --out tl4 --init-from lm/model.h5 --extend-vocab \
    --batch 2 --steps 1 "${common[@]}" >tl4.log 2>&1
check "init-from --extend-vocab on examples: runs, 1 new symbol" \
    has tl4.log "1 new symbols start fresh" || show tl4.log

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
