#!/usr/bin/env bash
# --precision bf16 end to end: train says its precision and stores it in the
# checkpoint; exact resume in bf16 (2N steps straight = N + resume + N, bit for
# bit, every cell, 1 and 2 ranks); a resumed run keeps its checkpoint's
# precision and refuses a different --precision; bf16 really changes the
# numbers (not a silent FP32 run); eval, sample and trace take --precision;
# the checkpoint stays FP32 and loads into PyTorch;
# on a CPU without AVX512_BF16 (hidden with CHARNN_AVX512_BF16=0) every
# command fails with one line naming the missing instruction set.
#
#   bash tests/cli_bf16.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_bf16.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_bf16.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_bf16.d
rm -rf "$WORK"
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIEXEC=(mpiexec --oversubscribe)

# shellcheck source=tests/ckpt_testlib.sh
. "$SRC/tests/ckpt_testlib.sh"

# "step loss grad_norm" of every train line of a metrics.jsonl, sorted by step
train_losses() {
    grep '"type":"train"' "$1" |
        sed -E 's/.*"step":([0-9]+),.*"loss":([^,]+),.*"grad_norm":([^,]+),.*/\1 \2 \3/' |
        sort -n -k1,1
}

MSG="charnn: --precision bf16 needs a CPU with AVX512_BF16 (this one has no avx512_bf16)"

# ---- without the instruction set: one line, exit 1, for every command ------
# (first, so that it also runs on a CPU without AVX512_BF16)
CHARNN_AVX512_BF16=0 "$CHARNN" train --data "$DATA" --out "$WORK/nocpu" --hidden 16 --seq 8 \
    --batch 2 --steps 2 --precision bf16 --no-progress >"$WORK/nocpu.out" 2>"$WORK/nocpu.err"
rc=$?
check "train --precision bf16 without AVX512_BF16 exits 1 (got $rc)" [ $rc = 1 ]
check "... with exactly the one-line error" [ "$(cat "$WORK/nocpu.err")" = "$MSG" ]
check "... and trains nothing" [ ! -e "$WORK/nocpu/model.h5" ]
[ "$(cat "$WORK/nocpu.err")" = "$MSG" ] || show "$WORK/nocpu.err"

if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then
    HAVE_BF16=1
else
    HAVE_BF16=0
    echo "# this CPU has no avx512_bf16: the bf16 runs below are skipped"
fi

if [ $HAVE_BF16 = 1 ]; then
    N=6
    STEPS2=$((2 * N))
    for cell in rnn lstm gru; do
        for np in 1 2; do
            tag=bf16-$cell-np$np
            if [ "$np" = 1 ]; then launch=(); else launch=("${MPIEXEC[@]}" -np 2); fi
            flags=(--data "$DATA" --cell "$cell" --layers 2 --hidden 48 --embed 24 --seq 12
                   --batch 5 --threads 1 --log-every 1 --eval-every 5 --eval-chunks 4 --dropout 0.1
                   --no-progress)
            A=$WORK/$tag-A
            B=$WORK/$tag-B
            run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --precision bf16 \
                --out "$A" --steps $STEPS2 >"$A.log" 2>&1
            rc=$?
            check "$tag: straight run exits 0 (got $rc)" [ $rc = 0 ]
            [ $rc = 0 ] || show "$A.log"
            check "$tag: train prints its precision" \
                grep -qF "precision: bf16 (bf16 operands, FP32 sums" "$A.log"
            check "$tag: train says the step products run on bf16 panels" \
                grep -qF "recurrent step products: AVX512_BF16 packed W_hh (bf16 panels)" "$A.log"
            prec=$(h5dump -a /precision "$A/model.h5" 2>/dev/null | grep -o '"bf16"')
            check "$tag: model.h5 stores precision bf16 ('$prec')" [ "$prec" = '"bf16"' ]
            run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --precision bf16 \
                --out "$B" --steps $N >"$B.log1" 2>&1
            rc=$?
            check "$tag: first $N steps exit 0 (got $rc)" [ $rc = 0 ]
            # no --precision: the checkpoint's
            run_limited 120 "${launch[@]}" "$CHARNN" train "${flags[@]}" --out "$B" \
                --steps $STEPS2 --resume auto >"$B.log2" 2>&1
            rc=$?
            check "$tag: resumed run exits 0 (got $rc)" [ $rc = 0 ]
            [ $rc = 0 ] || show "$B.log2"
            check "$tag: the resumed run keeps bf16" grep -qF "precision: bf16" "$B.log2"
            for g in /model /optimizer /ranks; do
                if h5diff "$A/model.h5" "$B/model.h5" "$g" >"$WORK/h5diff.out" 2>&1; then
                    ok "$tag: straight vs resumed $g identical"
                else
                    notok "$tag: straight vs resumed $g differ"
                    show "$WORK/h5diff.out"
                fi
            done
            train_losses "$A/metrics.jsonl" >"$A.losses"
            train_losses "$B/metrics.jsonl" >"$B.losses"
            check "$tag: $STEPS2 train losses each, identical step by step" \
                bash -c "[ \$(wc -l <'$A.losses') = $STEPS2 ] && cmp -s '$A.losses' '$B.losses'"
        done
    done

    # the same run in f32 gives other numbers: bf16 is not a silent FP32 run
    F=$WORK/f32
    flags=(--data "$DATA" --cell lstm --layers 2 --hidden 48 --embed 24 --seq 12 --batch 5
           --threads 1 --log-every 1 --eval-every 5 --eval-chunks 4 --dropout 0.1 --no-progress
           --steps 16)
    "$CHARNN" train "${flags[@]}" --out "$F" >"$F.log" 2>&1
    check "f32 run prints 'precision: f32'" grep -qx "precision: f32" "$F.log"
    if h5diff -q "$F/model.h5" "$WORK/bf16-lstm-np1-A/model.h5" /model >/dev/null 2>&1; then
        notok "f32 and bf16 runs ended with the same parameters"
    else
        ok "f32 and bf16 runs end with different parameters"
    fi
    # a resumed run may not switch precision
    "$CHARNN" train "${flags[@]}" --out "$F" --steps 20 --resume auto --precision bf16 \
        >"$F.log2" 2>&1
    rc=$?
    check "resuming an f32 checkpoint with --precision bf16 exits 1 (got $rc)" [ $rc = 1 ]
    check "... saying why" grep -qF \
        "was trained with --precision f32, this run asks for --precision bf16" "$F.log2"

    # eval, sample and trace
    M=$WORK/bf16-lstm-np1-A/model.h5
    e32=$("$CHARNN" eval --model "$M" --data "$DATA" --split val --seq 2000 --json --threads 1 2>&1)
    e16=$("$CHARNN" eval --model "$M" --data "$DATA" --split val --seq 2000 --json --threads 1 \
        --precision bf16 2>&1)
    l32=$(echo "$e32" | sed -nE 's/.*"loss":([^,}]+).*/\1/p')
    l16=$(echo "$e16" | sed -nE 's/.*"loss":([^,}]+).*/\1/p')
    check "eval --precision bf16 gives a loss ('$l16') near but not at f32's ('$l32')" \
        python3 -c "a, b = float('$l32'), float('$l16'); exit(not (a != b and abs(a - b) < 0.01 * a))"
    s16=$("$CHARNN" sample --model "$M" --length 40 --seed 3 --precision bf16 2>&1)
    rc=$?
    check "sample --precision bf16 exits 0 (got $rc) and writes 40 characters" \
        [ $rc = 0 -a "$(printf %s "$s16" | wc -m)" -ge 40 ]
    "$CHARNN" trace --model "$M" --data "$DATA" --max-chars 50 --out "$WORK/t.h5" \
        --precision bf16 >"$WORK/trace.log" 2>&1
    rc=$?
    check "trace --precision bf16 exits 0 (got $rc)" [ $rc = 0 -a -s "$WORK/t.h5" ]
    [ $rc = 0 ] || show "$WORK/trace.log"
    # the checkpoint stays FP32
    dt=$(h5dump -H -d /model/weight_hh_l0 "$M" 2>/dev/null | grep -c H5T_IEEE_F32LE)
    check "the bf16 run's weights are stored as FP32" [ "$dt" -ge 1 ]
    # ... and PyTorch loads it: torch.nn.LSTM reproduces charnn's FP32 eval loss
    if /usr/bin/python3 -c "import torch, h5py" 2>/dev/null; then
        head -c 3000 "$DATA" >"$WORK/eval.txt"
        ours=$("$CHARNN" eval --model "$M" --data "$WORK/eval.txt" --batch 1 --seq 64 --json \
            --threads 1 2>&1)
        theirs=$(/usr/bin/python3 "$SRC/tests/pytorch_interop.py" "$M" "$WORK/eval.txt" 2>&1)
        check "torch reproduces charnn's eval loss of the bf16-trained model ($ours / $theirs)" \
            /usr/bin/python3 -c "
import json
a = json.loads('''$ours'''); b = json.loads('''$theirs''')
assert a['tokens'] == b['tokens'] and abs(a['loss'] - b['loss']) <= 1e-4 * abs(b['loss'])"
    else
        echo "# no torch/h5py: the PyTorch load is not checked here (cli_pytorch.sh covers the format)"
    fi
    # eval, sample, trace without the instruction set
    for cmd in "eval --model $M --data $DATA" "sample --model $M --length 5" \
        "trace --model $M --data $DATA --max-chars 5 --out $WORK/t2.h5"; do
        # shellcheck disable=SC2086
        CHARNN_AVX512_BF16=0 "$CHARNN" $cmd --precision bf16 >"$WORK/no.out" 2>"$WORK/no.err"
        rc=$?
        check "${cmd%% *} --precision bf16 without AVX512_BF16 exits 1 with the one line (got $rc)" \
            [ $rc = 1 -a "$(cat "$WORK/no.err")" = "$MSG" ]
    done
fi

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ]
