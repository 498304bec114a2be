#!/usr/bin/env bash
# `charnn train --task classify` end to end on a generated set ("does the line
# hold more 'a' than 'b'"): it learns far above the majority-class rate in
# seconds; the header reports classes, splits, padding (buckets against a plain
# shuffle) and truncation; a run stopped mid-epoch and resumed is bit-identical
# to an uninterrupted one (losses, parameters, optimizer state), and a
# checkpoint of 2 ranks x 4 resumes on 1 rank x 8 at the same batch; every
# optimizer, class weights and balanced sampling train; traces record where
# the decision forms (for a bidirectional classifier too: both directions'
# states, recomputed in PyTorch, and each prefix's probability = charnn
# predict's on that prefix); bad input fails with one line naming the file
# and what is wrong, leaving no run behind.
#
#   bash tests/cli_classify.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_classify.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_classify.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
WORK=$PWD/cli_classify.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# 600 lines of a, b, c, d and spaces, 4-40 long; the label says whether 'a'
# outnumbers 'b' (ties get one more 'a'). The answer needs counting over the
# whole line: no single character or position gives it away.
awk 'BEGIN {
    srand(5); print "text\tlabel"
    split("a a b b c d _", sym, " ")
    for (i = 0; i < 600; i++) {
        n = 4 + int(rand() * 37); s = ""; a = 0; b = 0
        for (j = 0; j < n; j++) {
            c = sym[1 + int(rand() * 7)]; if (c == "_") c = " "
            s = s c; a += c == "a"; b += c == "b"
        }
        if (a == b) { s = s "a"; a++ }
        print s "\t" (a > b ? "more_a" : "more_b")
    }
}' > ab.tsv
majority=$(awk -F'\t' 'NR > 1 { n[$2]++; t++ } END { m = 0; for (k in n) if (n[k] > m) m = n[k]; printf "%.4f", m / t }' ab.tsv)
echo "# majority-class rate $majority"

val_acc() { grep '"type":"val"' "$1" | tail -1 | sed -E 's/.*"val_acc":([0-9.]+).*/\1/'; }
train_losses() {
    grep '"type":"train"' "$1" | sed -E 's/.*"step":([0-9]+),.*"loss":([^,]+),.*"grad_norm":([^,]+),.*/\1 \2 \3/'
}

# ---- 1. learning, from the raw TSV ----------------------------------------
"$CHARNN" train --task classify --data ab.tsv --out learn --cell gru --layers 1 --hidden 32 \
    --batch 16 --epochs 15 --lr 0.01 --val-frac 0.2 --test-frac 0 --eval-every 150 \
    --log-every 50 --threads 1 --no-progress > learn.log 2>&1
check "train --task classify on a raw TSV exits 0 (got $?)" test -s learn/model.h5 || show learn.log
acc=$(val_acc learn/metrics.jsonl)
echo "# validation accuracy $acc"
# a model that ignores its input predicts one class: at most the majority rate
# (0.5-0.55 here); counting a against b reaches 0.95+ in 450 steps (measured 0.975)
check "validation accuracy $acc >= 0.85 and >= majority $majority + 0.25" \
    awk -v a="$acc" -v m="$majority" 'BEGIN { exit !(a >= 0.85 && a >= m + 0.25) }'
check "the header names the task, the classes and the splits" \
    has learn.log "task classify: 2 classes, pool last; data 'ab.tsv' (raw input, prepared in a temporary file): examples train 480, val 120, test 0"
pad=$(sed -nE 's/.*padding ([0-9.]+)% \(([0-9.]+)% without length buckets\).*/\1 \2/p' learn.log)
check "the header reports padding below a plain shuffle's: $pad" \
    awk -v p="$pad" 'BEGIN { split(p, v, " "); exit !(v[1] < 10 && v[2] > 25) }'
check "the log lines carry padding and truncation" \
    grep -q '"examples_per_s":.*"padding":0\.[0-9]*,"truncated":0}' learn/metrics.jsonl
check "the final line reports the accuracy" grep -q '^done: step 450, validation loss .* accuracy ' learn.log
check "no temporary examples file is left in \$TMPDIR" \
    test -z "$(ls "${TMPDIR:-/tmp}" | grep "charnn-classify-")"

# ---- 2. exact resume mid-epoch (prepared file, LSTM with dropout) ---------
"$CHARNN" prepare --task classify ab.tsv --out ab.h5 --val-frac 0.2 --test-frac 0.1 > prep.log 2>&1
check "prepare --task classify (exit $?)" test -s ab.h5
base=(--task classify --data ab.h5 --cell lstm --layers 2 --hidden 16 --dropout 0.1 --batch 8
      --steps 90 --lr 0.01 --eval-every 30 --log-every 1 --threads 1 --no-progress)
flags=("${base[@]}" --max-len 30 --pool mean --bucket 20)
"$CHARNN" train "${flags[@]}" --out A --checkpoint-every 40 > A.log 2>&1
check "the uninterrupted run exits 0" test -s A/model.h5
"$CHARNN" train "${flags[@]}" --out B --steps 40 --checkpoint-every 0 > B1.log 2>&1
cp B/model.h5 B40.h5
# without --max-len, --pool and --bucket: the checkpoint's are kept
"$CHARNN" train "${base[@]}" --out B --resume B40.h5 > B2.log 2>&1
check "the resumed run exits 0" test -s B/model.h5 || show B2.log
check "it resumes mid-epoch: batch 40 of 53" has B2.log "(epoch 0, batch 40 of 53)"
check "losses after the resume are bit-identical" \
    diff <(train_losses A/metrics.jsonl | awk '$1 > 40') <(train_losses B/metrics.jsonl | awk '$1 > 40')
val_lines() { grep '"type":"val"' "$1" | awk -F'"step":' '{ split($2, v, ","); if (v[1] > 40) print }' | sed -E 's/,"tokens".*//'; }
check "validation losses and accuracies after the resume are identical" \
    diff <(val_lines A/metrics.jsonl) <(val_lines B/metrics.jsonl)
for g in /model /optimizer; do
    check "parameters and optimizer state identical: $g" h5diff A/model.h5 B/model.h5 "$g"
done
check "a mid-run checkpoint of the straight run equals the resume's start" \
    h5diff A/ckpt-00000040.h5 B40.h5 /model

# ---- 3. 2 ranks x 4 resume on 1 rank x 8 ----------------------------------
if command -v mpiexec > /dev/null; then
    mflags=(--task classify --data ab.h5 --cell gru --layers 1 --hidden 16 --steps 30 --lr 0.01
            --eval-every 0 --log-every 1 --threads 1 --no-progress)
    timeout 300 mpiexec --oversubscribe -np 2 "$CHARNN" train "${mflags[@]}" --batch 4 --out M2 \
        --checkpoint-every 20 > M2.log 2>&1
    check "2 ranks x 4 train (exit $?)" test -s M2/model.h5
    "$CHARNN" train "${mflags[@]}" --batch 8 --out M1 --resume M2/ckpt-00000020.h5 > M1.log 2>&1
    check "1 rank x 8 resumes the 2 x 4 checkpoint at batch 20" has M1.log "(epoch 0, batch 20 of 53)"
    check "and continues with the same losses (to float reassociation)" \
        awk 'NR == FNR { a[$1] = $2; next } $1 > 20 { n++; d = $2 - a[$1]; if (d < 0) d = -d;
             if (d > 1e-4 * a[$1]) bad++ } END { exit !(n == 10 && !bad) }' \
        <(train_losses M2/metrics.jsonl) <(train_losses M1/metrics.jsonl)
fi

# ---- 4. optimizers, pooling, class weights, sampling, truncation ----------
for opt in sgd rmsprop adagrad; do
    "$CHARNN" train --task classify --data ab.h5 --out "o_$opt" --optim "$opt" --cell rnn \
        --pool max --layers 1 --hidden 16 --batch 8 --steps 20 --eval-every 0 --threads 1 \
        --no-progress > "o_$opt.log" 2>&1
    check "--optim $opt trains a classifier" grep -q '^done: step 20, validation loss [0-9.]* nats' "o_$opt.log"
done
awk -F'\t' 'NR == 1 || $2 == "more_b" || NR % 8 == 0' ab.tsv > skew.tsv
for how in "--class-weights balanced" "--balanced-sampling"; do
    # shellcheck disable=SC2086
    "$CHARNN" train --task classify --data skew.tsv --out skew $how --layers 1 --hidden 16 \
        --batch 8 --steps 20 --eval-every 0 --threads 1 --no-progress > skew.log 2>&1
    check "$how trains on a skewed set and says so" grep -q '^skewed classes: ' skew.log || show skew.log
    rm -rf skew
done
"$CHARNN" train --task classify --data ab.h5 --out trunc --max-len 10 --layers 1 --hidden 16 \
    --batch 8 --steps 10 --eval-every 0 --log-every 5 --threads 1 --no-progress > trunc.log 2>&1
n=$(sed -nE 's/.*--max-len 10 truncates ([0-9]+) training examples.*/\1/p' trunc.log)
want=$(awk -F'\t' 'NR > 1 && length($1) > 10' ab.tsv | wc -l)
check "--max-len 10 truncation is counted ($n of the training split; $want in the whole set)" \
    awk -v n="$n" -v w="$want" 'BEGIN { exit !(n > 0.5 * w && n < 0.85 * w) }'
check "and reported per log line" grep -q '"truncated":[1-9]' trunc/metrics.jsonl

# ---- 5. charnn eval on a classifier --------------------------------------
out=$("$CHARNN" eval --model learn/model.h5 --data ab.tsv --split val --json)
check "eval --json on a classifier gives the training run's validation loss: $out" \
    test "$(echo "$out" | sed -E 's/.*"accuracy":([0-9.]+).*/\1/')" = "$(printf '%.6f' "$acc")"

# ---- 6. traces of a classifier -------------------------------------------
"$CHARNN" trace --model learn/model.h5 --data ab.tsv --split val --out learn_trace.h5 > trace.log 2>&1
check "charnn trace on a classifier (exit $?): $(cat trace.log)" test -s learn_trace.h5
check "its accuracy at the last character is eval's" \
    grep -q "accuracy $(printf '%.4f' "$acc") at their last character" trace.log
r=$(sed -nE 's/.*\(r = (-?[0-9.]+)\)$/\1/p' trace.log)
# a model that counts a against b keeps the count in a unit; an untrained
# one's best |r| over 32 units and 120 examples is about 0.3
check "a unit follows the label: |r| = ${r#-} > 0.7" awk -v r="$r" 'BEGIN { if (r < 0) r = -r; exit !(r > 0.7) }'
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    check "the trace's per-character probabilities are distributions and its last ones the predictions" \
        /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('learn_trace.h5', 'r')
assert f.attrs['kind'] == 'classify' and int(f.attrs['n_examples']) == 120
p, off, pred = f['prob'][:], f['offsets'][:], f['pred'][:]
assert p.shape == (int(f.attrs['n_steps']), 2) and off[-1] == p.shape[0]
assert np.allclose(p.sum(1), 1, atol=1e-5)
assert (p[off[1:] - 1].argmax(1) == pred).all()
assert f['layer0/h'].shape == (p.shape[0], 32) and f['layer0/label_corr'].shape == (2, 32)"
fi
"$CHARNN" analyze learn_trace.h5 > analyze.log 2>&1
check "charnn analyze on a classifier's trace (exit $?)" has analyze.log "units whose final state follows a class"
pre=$(sed -nE 's/^accuracy of the prediction after 25% \/ 50% \/ 75% \/ all of each example: (.*)$/\1/p' analyze.log)
# the count is only known at the end of the line: a quarter of it predicts far worse
check "prefix accuracies rise to the final one: $pre" \
    awk -v p="$pre" -v a="$acc" 'BEGIN { split(p, v, " / "); exit !(v[4] == sprintf("%.4f", a) && v[1] < v[4] - 0.1) }'
"$CHARNN" analyze --json --top 3 learn_trace.h5 > analyze.json
check "and --json: one object with 3 units" grep -q '^{"trace":"learn_trace.h5","kind":"classify",.*"units":{"more_b":\[{[^]]*},{[^]]*},{[^]]*}\]}}$' analyze.json
"$CHARNN" train --task classify --data ab.h5 --out traced --layers 1 --hidden 16 --batch 8 \
    --steps 20 --trace-every 10 --trace-probe-chars 200 --eval-every 0 --threads 1 \
    --no-progress > traced.log 2>&1
check "train --trace-every writes a classifier trace per traced step" \
    test -s traced/trace_classify-00000010.h5 -a -s traced/trace_classify-00000020.h5
# a bidirectional classifier: the reverse direction reads from the example's
# end, so its states are recorded beside the forward's (h_reverse, c_reverse),
# the head reads [forward ; reverse] (C, 2H), and the probability after a
# character is the model's answer on the prefix run as an example of its own
"$CHARNN" train --task classify --data ab.h5 --out bi --cell lstm --layers 2 --hidden 8 \
    --embed 6 --bidirectional --pool mean --batch 16 --steps 60 --lr 0.02 --eval-every 0 \
    --threads 1 --no-progress > bi.log 2>&1
check "a bidirectional LSTM classifier trains (exit $?)" test -s bi/model.h5 || show bi.log
"$CHARNN" trace --model bi/model.h5 --data ab.h5 --split val --max-chars 400 --out bi_trace.h5 \
    > bi_trace.log 2>&1
check "charnn trace on a bidirectional classifier (exit $?): $(cat bi_trace.log)" \
    grep -qE "^trace of [0-9]+ examples .* unit [0-9]+ of layer [01]( \(reverse\))? follows class 'more_[ab]' most \(r = -?[0-9.]+\)$" bi_trace.log
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    check "its shapes: h, c, h_reverse, c_reverse of every layer and character, label_corr per direction" \
        /usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('bi_trace.h5', 'r')
a = f.attrs
assert int(a['directions']) == 2 and a['prefix_prob'] == 'rerun', dict(a)
N, E = int(a['n_steps']), int(a['n_examples'])
assert f['prob'].shape == (N, 2) and np.allclose(f['prob'][:].sum(1), 1, atol=1e-5)
for l in range(2):
    assert set(f['layer%d' % l].keys()) == {'h', 'c', 'h_reverse', 'c_reverse', 'label_corr', 'label_corr_reverse'}
    for n in ('h', 'c', 'h_reverse', 'c_reverse'):
        assert f['layer%d/%s' % (l, n)].shape == (N, 8)
    assert f['layer%d/label_corr_reverse' % l].shape == (2, 8)
v, tok, off = f['vocab'][:], f['tokens'][:], f['offsets'][:]
with open('bi_val.txt', 'w') as o, open('bi_prefix.txt', 'w') as p:
    for i in range(E):
        s = ''.join(chr(v[t]) for t in tok[off[i]:off[i + 1]])
        o.write(s + '\n')
        if i < 5:
            for k in range(1, len(s) + 1):
                p.write(s[:k] + '\n')"
    "$CHARNN" predict --model bi/model.h5 --json --top-k 2 bi_val.txt > bi_val.json 2>&1
    "$CHARNN" predict --model bi/model.h5 --json --top-k 2 bi_prefix.txt > bi_prefix.json 2>&1
    cat > bi_check.py <<'PY'
import json, sys
import h5py, numpy as np
f = h5py.File('bi_trace.h5', 'r')
names = [s.decode() for s in f['label_names'][:]]
prob, off, pred = f['prob'][:], f['offsets'][:], f['pred'][:]
def probs(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        q = [0.0] * len(names)
        for t in r['top']:
            q[names.index(t['label'])] = t['probability']
        out.append(q)
    return np.array(out)
if sys.argv[1] == 'final':
    q = probs('bi_val.json')
    assert q.shape == (len(off) - 1, 2), q.shape
    d = np.abs(q - prob[off[1:] - 1]).max()
    assert (prob[off[1:] - 1].argmax(1) == pred).all()
else:  # every prefix of the first 5 examples
    q = probs('bi_prefix.json')
    d = np.abs(q - prob[:off[5]]).max()
print('%.3g' % d)
assert d <= 1e-5
PY
    d=$(/usr/bin/python3 bi_check.py final 2>&1)
    check "its final probabilities are charnn predict --json's: max difference $d <= 1e-5" test $? = 0
    d=$(/usr/bin/python3 bi_check.py prefix 2>&1)
    check "its probability after each character is charnn predict's on that prefix: max difference $d <= 1e-5" test $? = 0
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        cat > bi_torch.py <<'PY'
# Recompute the trace from the checkpoint in PyTorch, one bidirectional layer
# at a time: every h of both directions, the final c of each, the final
# probabilities (mean pooling of [forward ; reverse], nn.Linear(2H, C)).
import h5py, numpy as np, torch
with h5py.File('bi/model.h5', 'r') as f:
    a = f.attrs
    L, H, E = int(a['layers']), int(a['hidden']), int(a['embed'])
    t = {n: torch.from_numpy(f['model'][n][:]) for n in f['model']}
layers = []
for l in range(L):
    m = torch.nn.LSTM(input_size=E if l == 0 else 2 * H, hidden_size=H, bidirectional=True)
    m.load_state_dict({'%s_l0%s' % (w, s): t['%s_l%d%s' % (w, l, s)]
                       for w in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh') for s in ('', '_reverse')})
    layers.append(m)
lin = torch.nn.Linear(2 * H, 2)
lin.load_state_dict({'weight': t['classifier.weight'], 'bias': t['classifier.bias']})
worst = 0.0
with h5py.File('bi_trace.h5', 'r') as f, torch.no_grad():
    off, tok, prob = f['offsets'][:], torch.from_numpy(f['tokens'][:].astype('int64')), f['prob'][:]
    hs = [[f['layer%d/h%s' % (l, s)][:] for s in ('', '_reverse')] for l in range(L)]
    cs = [[f['layer%d/c%s' % (l, s)][:] for s in ('', '_reverse')] for l in range(L)]
    for i in range(len(off) - 1):
        lo, hi = int(off[i]), int(off[i + 1])
        x = torch.nn.functional.embedding(tok[lo:hi], t['embedding.weight']).unsqueeze(1)
        for l, m in enumerate(layers):
            x, (h_n, c_n) = m(x)
            out = x.squeeze(1).numpy()
            for d in range(2):
                worst = max(worst, np.abs(out[:, d * H:(d + 1) * H] - hs[l][d][lo:hi]).max())
            worst = max(worst, np.abs(c_n[0, 0].numpy() - cs[l][0][hi - 1]).max(),
                        np.abs(c_n[1, 0].numpy() - cs[l][1][lo]).max())
        p = torch.softmax(lin(x.squeeze(1).mean(0)), 0).numpy()
        worst = max(worst, np.abs(p - prob[hi - 1]).max())
print('%.3g' % worst)
PY
        d=$(/usr/bin/python3 bi_torch.py 2>&1)
        check "PyTorch recomputes its states of both directions and final probabilities: max difference $d <= 1e-5" \
            awk -v d="$d" 'BEGIN { exit !(d + 0 == d && d <= 1e-5) }'
    fi
fi
"$CHARNN" analyze --json --top 40 bi_trace.h5 > bi_analyze.json
check "analyze names the direction of each of a bidirectional classifier's 32 units" \
    /usr/bin/python3 -c "
import json
u = json.load(open('bi_analyze.json'))['units']['more_b']
assert len(u) == 32 and sorted((x['layer'], x['direction'], x['unit']) for x in u) == sorted((l, d, j) for l in range(2) for d in ('forward', 'reverse') for j in range(8)), u"
"$CHARNN" analyze --top 32 bi_trace.h5 > bi_analyze.log 2>&1
check "and as text: the header says bidirectional" \
    grep -q "^trace 'bi_trace.h5' (classify; lstm, 2 x 8, bidirectional, model 'bi/model.h5'" bi_analyze.log
check "and names reverse units" grep -q "layer [01] reverse unit [0-9]* r [-+]" bi_analyze.log

# ---- 7. bad input --------------------------------------------------------
expect_error() { # what, wanted stderr, command...
    local what=$1 want=$2; shift 2
    "$@" > err.out 2> err.txt
    local rc=$?
    check "$what: exit 1 (got $rc)" test "$rc" = 1
    check "$what: '$(cat err.txt)'" test "$(cat err.txt)" = "$want"
}
printf 'id\ttext\n1\tabc\n' > nolabel.tsv
expect_error "a missing label column" "charnn: 'nolabel.tsv' line 1: no column 'label' (the header has: id, text)" \
    "$CHARNN" train --task classify --data nolabel.tsv --out bad1
check "nothing is left of the failed run" test ! -e bad1
printf 'text\tlabel\nabc\tx\n\ty\nab\tx\n' > empty.tsv
expect_error "an empty text" "charnn: 'empty.tsv' line 3: empty text" \
    "$CHARNN" train --task classify --data empty.tsv --out bad2
printf 'text\tlabel\nab\xff\tx\n' > utf8.tsv
"$CHARNN" train --task classify --data utf8.tsv --out bad3 > /dev/null 2> err.txt
check "an invalid UTF-8 line names the file and line: '$(cat err.txt)'" grep -q "^charnn: 'utf8.tsv' line 2.*UTF-8" err.txt
expect_error "a missing file" "charnn: cannot read 'nope.tsv': No such file or directory" \
    "$CHARNN" train --task classify --data nope.tsv --out bad4
expect_error "--balance auto" "charnn: --balance auto is not supported by --task classify (give fixed weights w0,w1,...)" \
    "$CHARNN" train --task classify --data ab.h5 --out bad5 --balance auto
expect_error "another pooling on resume" \
    "charnn: checkpoint 'B40.h5' pools with mean, this run asks for --pool max" \
    "$CHARNN" train "${base[@]}" --out bad7 --resume B40.h5 --pool max
expect_error "a classifier resumed as a language model" \
    "charnn: checkpoint 'learn/model.h5' was trained for task classify, this run asks for --task lm" \
    "$CHARNN" train --task lm --data ab.tsv --out bad6 --resume learn/model.h5
awk -F'\t' 'NR == 1 { print; next } { print $1 "\t" ($2 == "more_a" ? "yes" : "no") }' ab.tsv > other.tsv
expect_error "eval on data with other classes" \
    "charnn: 'other.tsv' has other classes than the model 'learn/model.h5' was trained on" \
    "$CHARNN" eval --model learn/model.h5 --data other.tsv

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
