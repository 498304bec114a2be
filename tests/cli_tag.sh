#!/usr/bin/env bash
# `charnn train --task tag` end to end, on generated data:
#  1. online vs offline: each character is tagged Y when it lies inside
#     brackets, "(" ... ")", where half the rows never close their bracket and
#     the ")" of the others is the row's last character. Whether a character
#     after "(" is inside depends only on what comes later, so an online
#     (unidirectional) tagger cannot beat chance there: its accuracy on the
#     test rows is bounded by (determined + ambiguous/2 + 4 sigma) / all,
#     sigma = sqrt(sum over rows of ambiguous_r^2) / 2 (each row's coin is
#     independent of everything an online tagger has read), computed from
#     the test file. The bidirectional tagger must reach 0.99.
#  2. exact resume mid-epoch (bidirectional LSTM, 2 layers, dropout): the
#     losses, validation and the final parameters and optimizer state are
#     bit-identical to an uninterrupted run.
#  3. 2 ranks x 4 rows train as 1 rank x 8 (losses equal to float
#     reassociation): the loss is normalised by the tagged characters of the
#     whole global batch.
#  4. bad input: --bidirectional for a language model, a classification file
#     for the tagger, by exact text and exit status.
#
#   bash tests/cli_tag.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_tag.sh CHARNN SOURCE_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
WORK=$PWD/cli_tag.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1

train_losses() {
    grep '"type":"train"' "$1" | sed -E 's/.*"step":([0-9]+),.*"loss":([^,]+),.*"grad_norm":([^,]+),.*/\1 \2 \3/'
}
# json_field JSON NAME: a numeric member of a one-line JSON object
json_field() { sed -E "s/.*\"$2\":([-0-9.e]+).*/\1/" <<<"$1"; }

# ---- 1. brackets: online cannot, offline can ------------------------------
gen() { # seed rows file
    /usr/bin/python3 - "$@" <<'PY'
import random, sys
r = random.Random(int(sys.argv[1]))
with open(sys.argv[3], "w") as f:
    f.write("text\ttags:NY\n")
    for _ in range(int(sys.argv[2])):
        n = r.randint(10, 20)
        p = r.randint(0, 4)
        close = r.random() < 0.5
        s = [r.choice("ab") for _ in range(n)]
        s[p] = "("
        tags = ["N"] * n
        if close:
            s[n - 1] = ")"
            for i in range(p + 1, n - 1):
                tags[i] = "Y"
        f.write("%s\t%s\n" % ("".join(s), "".join(tags)))
PY
}
gen 5 2000 train.tsv
gen 6 300 test.tsv
"$CHARNN" prepare --task tag train.tsv --test test.tsv --val-frac 0.1 --out br.h5 >prep.log 2>&1
check "prepare the bracket data (exit $?)" test -s br.h5
# the online bound from the test rows: positions strictly between "(" and the row's last
# character are ambiguous to an online reader
bound=$(awk -F'\t' 'NR > 1 { n = length($1); p = index($1, "("); a = n - 1 - p; A += a; S2 += a * a; N += n }
    END { printf "%.6f", (N - A + A / 2 + 4 * sqrt(S2) / 2) / N }' test.tsv)
tflags=(--task tag --data br.h5 --cell gru --layers 1 --hidden 16 --batch 32 --steps 300 --lr 0.01
        --eval-every 0 --log-every 100 --threads 1 --no-progress)
"$CHARNN" train "${tflags[@]}" --out uni >uni.log 2>&1
"$CHARNN" train "${tflags[@]}" --bidirectional --out bi >bi.log 2>&1
check "both taggers train" test -s uni/model.h5 -a -s bi/model.h5 || show bi.log
check "the header says online and offline" has uni.log "unidirectional (online)"
has bi.log "bidirectional (offline)" || { echo "not ok - bidirectional header"; fail=$((fail+1)); }
ju=$("$CHARNN" eval --model uni/model.h5 --data br.h5 --split test --json)
jb=$("$CHARNN" eval --model bi/model.h5 --data br.h5 --split test --json)
au=$(json_field "$ju" accuracy)
ab=$(json_field "$jb" accuracy)
check "the online tagger stays below the online bound: accuracy $au < $bound" \
    awk -v a="$au" -v b="$bound" 'BEGIN { exit !(a < b) }'
check "the offline tagger is near perfect: accuracy $ab >= 0.99" \
    awk -v a="$ab" 'BEGIN { exit !(a >= 0.99) }'

# ---- 2. exact resume mid-epoch --------------------------------------------
flags=(--task tag --data br.h5 --cell lstm --layers 2 --hidden 8 --dropout 0.1 --bidirectional
       --batch 8 --steps 70 --lr 0.01 --eval-every 30 --log-every 1 --threads 1 --no-progress)
"$CHARNN" train "${flags[@]}" --out A --checkpoint-every 40 >A.log 2>&1
"$CHARNN" train "${flags[@]}" --out B --steps 40 >B1.log 2>&1
cp B/model.h5 B40.h5
"$CHARNN" train "${flags[@]}" --out B --resume B40.h5 >B2.log 2>&1
check "the resumed run exits 0" test -s B/model.h5 || show B2.log
check "it resumes mid-epoch: batch 40 of 225" has B2.log "(epoch 0, batch 40 of 225)"
check "losses after the resume are bit-identical" \
    diff <(train_losses A/metrics.jsonl | awk '$1 > 40') <(train_losses B/metrics.jsonl | awk '$1 > 40')
for g in /model /optimizer; do
    check "parameters and optimizer state identical: $g" h5diff A/model.h5 B/model.h5 "$g"
done

# ---- 3. N ranks x B == 1 rank x N*B ----------------------------------------
if command -v mpiexec >/dev/null; then
    mflags=(--task tag --data br.h5 --cell gru --layers 1 --hidden 8 --bidirectional --steps 20
            --lr 0.01 --eval-every 0 --log-every 1 --threads 1 --no-progress)
    timeout 300 mpiexec --oversubscribe -np 2 "$CHARNN" train "${mflags[@]}" --batch 4 --out M2 \
        >M2.log 2>&1
    check "2 ranks x 4 train (exit $?)" test -s M2/model.h5 || show M2.log
    "$CHARNN" train "${mflags[@]}" --batch 8 --out M1 >M1.log 2>&1
    check "1 rank x 8 has the losses of 2 ranks x 4 (to float reassociation)" \
        awk 'NR == FNR { a[$1] = $2; next } { n++; d = $2 - a[$1]; if (d < 0) d = -d;
             if (d > 1e-4 * a[$1]) bad++ } END { exit !(n == 20 && !bad) }' \
        <(train_losses M2/metrics.jsonl) <(train_losses M1/metrics.jsonl)
fi

# ---- 4. bad input ------------------------------------------------------------
printf 'abc abc abc\n%.0s' {1..40} >lm.txt
"$CHARNN" train --data lm.txt --bidirectional --out badlm >out 2>err
status=$?
check "--bidirectional for a language model exits 1 (got $status)" test "$status" -eq 1
check "and says why: $(cat err)" test "$(cat err)" = "charnn: --bidirectional does not apply to --task lm: a language model predicts the next character and carries its state across chunks, so it cannot read ahead (use it with --task classify or tag)"
printf 'text\tlabel\n%s\n' "a b	x" "c d	y" "a c	x" "b d	y" >cls.tsv
"$CHARNN" prepare --task classify cls.tsv --out cls.h5 --val-frac 0 --test-frac 0 >/dev/null 2>&1
"$CHARNN" train --task tag --data cls.h5 --out badcls >out 2>err
status=$?
check "a classification file for the tagger exits 1 (got $status)" test "$status" -eq 1
check "and says so: $(cat err)" test "$(cat err)" = "charnn: 'cls.h5' holds examples for classification, not tags: prepare one with charnn prepare --task tag"

"$CHARNN" train --task tag --data br.h5 --resume uni/model.h5 --bidirectional --out badres >out 2>err
status=$?
check "resuming a unidirectional tagger with --bidirectional exits 1 (got $status): $(cat err)" \
    test "$status" -eq 1 -a "$(cat err)" = "charnn: checkpoint 'uni/model.h5' is unidirectional, this run asks for --bidirectional"

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
