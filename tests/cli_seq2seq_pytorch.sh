#!/usr/bin/env bash
# PyTorch interop of translation models: charnn's seq2seq checkpoints load by
# name into the PyTorch model of bench/torch_seq2seq_bench.py (no name left
# over on either side, the script exits otherwise), and PyTorch's
# padding-free teacher-forced test loss equals `charnn eval`'s to 1e-5, for
# every cell and every attention kind, one-hot and embedded input. Skips
# without python3-torch and python3-h5py.
#
#   bash tests/cli_seq2seq_pytorch.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_seq2seq_pytorch.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_seq2seq_pytorch.sh CHARNN SOURCE_DIR}
. "$SRC/tests/tap.sh"
py=/usr/bin/python3
if ! "$py" -c 'import torch, h5py' 2>/dev/null; then
    echo "skipped: python3-torch and python3-h5py are not installed"
    exit 77
fi
WORK=$PWD/cli_seq2seq_pytorch.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$py" - <<'PY'
import random
r = random.Random(2)
with open('pairs.tsv', 'w') as f:
    for _ in range(400):
        s = ''.join(r.choice('abcdefg') for _ in range(r.randint(2, 9)))
        f.write(s + '\t' + ''.join(sorted(s)) + 'é\n')
PY
"$CHARNN" prepare --task seq2seq pairs.tsv --out pairs.h5 >/dev/null 2>&1
check "prepare exits 0" [ $? = 0 ]
while read -r cell attn layers embed; do
    tag=$cell-$attn-L$layers-E$embed
    "$CHARNN" train --task seq2seq --data pairs.h5 --out "$tag" --cell "$cell" --attention "$attn" \
        --layers "$layers" --embed "$embed" --hidden 12 --batch 16 --steps 20 --no-progress \
        >"$tag.log" 2>&1
    check "$tag: train exits 0" [ $? = 0 ] || { show "$tag.log"; continue; }
    a=$("$CHARNN" eval --model "$tag/model.h5" --data pairs.h5 --json |
        "$py" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
    b=$("$py" "$SRC/bench/torch_seq2seq_bench.py" check --model "$tag/model.h5" --data pairs.h5 2>"$tag.err" |
        "$py" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
    check "$tag: charnn eval loss $a = PyTorch's $b (1e-5 relative)" \
        "$py" -c "import sys; a, b = float('$a'), float('$b'); sys.exit(0 if abs(a - b) <= 1e-5 * a else 1)" ||
        show "$tag.err"
done <<'CASES'
lstm none 1 0
lstm dot 2 0
lstm additive 1 4
gru general 2 4
gru dot 1 0
rnn additive 2 0
rnn general 1 3
CASES
echo "# $pass passed, $fail failed"
[ "$fail" = 0 ]
