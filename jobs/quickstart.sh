#!/usr/bin/env bash
# The main job on a workstation: install and build charnn, build the default
# corpus (Debian's fortunes), train a 2 x 128 LSTM for about two minutes on every
# core, then print its validation loss and a sample. Outputs go to runs/quickstart/.
#
#   bash jobs/quickstart.sh            (STEPS=3000 OUT=runs/x bash jobs/quickstart.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
corpus=$top/data/corpus/fortunes.txt
[ -s "$corpus" ] || "$top/data/build_corpus.sh" "$corpus"
out=${OUT:-$top/runs/quickstart}
charnn=${CHARNN_BUILD_DIR:-$top/build}/charnn
"$charnn" train --data "$corpus" --out "$out" --cell lstm --layers 2 --hidden 128 \
  --seq 64 --batch 32 --lr 3e-3 --steps "${STEPS:-3000}" --eval-every 500 \
  --checkpoint-every 500 --resume auto
echo
echo "== test-split loss"
"$charnn" eval --model "$out/model.h5" --data "$corpus" --split test
echo
echo "== sample (temperature 0.8)"
"$charnn" sample --model "$out/model.h5" --length 600 --temperature 0.8 --prime "The "
