#!/usr/bin/env bash
# PyTorch interop: a charnn checkpoint loads into torch.nn.RNN/LSTM/GRU through
# h5py (tests/pytorch_interop.py, the snippet of docs/pytorch.md) and
# reproduces `charnn eval`'s loss: language models, and classifiers (nn.Linear
# "classifier" over the pooled top states, every pooling, --max-len) to 1e-5,
# and vector classifiers (classify --features: the --layers 0 MLP as
# nn.Sequential(Linear, Tanh or ReLU, Linear), one step of an LSTM/GRU) to 1e-5. Skipped (exit 77) without Debian's
# python3-torch and python3-h5py.
set -u
charnn=$1
src=$2
py=/usr/bin/python3
if ! $py -c 'import torch, h5py' 2>/dev/null; then
  echo "skipped: python3-torch and python3-h5py are not installed"
  exit 77
fi
work=$PWD/cli_pytorch_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
pass=0; fail=0
check() { local what=$1; shift; if "$@"; then echo "ok - $what"; pass=$((pass+1)); else echo "not ok - $what"; fail=$((fail+1)); fi; }

text=$src/../shared/data/tinyshakespeare.txt
if [ -r "$text" ]; then head -c 60000 "$text" > train.txt; else
  $py -c "
import random; random.seed(3); w=['the','king','and','queen','of','a','land','where','rivers','run']
print('\n'.join(' '.join(random.choice(w) for _ in range(9)) for _ in range(1500)))" > train.txt
fi
head -c 3000 train.txt > eval.txt

for spec in "lstm 0" "gru 0" "rnn 0" "lstm 8"; do
  set -- $spec
  cell=$1 embed=$2
  out=run_${cell}_$embed
  "$charnn" train --data train.txt --out "$out" --cell "$cell" --embed "$embed" --layers 2 --hidden 24 \
    --seq 16 --batch 4 --steps 30 --threads 1 --no-progress --eval-every 0 > "$out.log" 2>&1
  check "$cell (embed $embed) trains" test $? = 0
  ours=$("$charnn" eval --model "$out/model.h5" --data eval.txt --batch 1 --seq 64 --json)
  theirs=$($py "$src/tests/pytorch_interop.py" "$out/model.h5" eval.txt)
  echo "  charnn: $ours"
  echo "  torch:  $theirs"
  check "$cell (embed $embed): torch reproduces charnn's eval loss" $py -c "
import json,sys
a=json.loads('''$ours'''); b=json.loads('''$theirs''')
assert a['tokens']==b['tokens'], (a['tokens'], b['tokens'])
assert abs(a['loss']-b['loss']) <= 1e-4*abs(b['loss']), (a['loss'], b['loss'])"
done
# classifiers: "more a than b" examples, each pooling, one-hot and embedded input
$py -c "
import random
r = random.Random(5)
print('text\tlabel')
for i in range(400):
    s = ''.join(r.choice('aabbcd ') for _ in range(r.randint(4, 40)))
    a, b = s.count('a'), s.count('b')
    print(s + ('a' if a == b else '') + '\t' + ('more_a' if a >= b else 'more_b'))" > ab.tsv
"$charnn" prepare --task classify ab.tsv --out ab.h5 --val-frac 0.1 --test-frac 0.2 > prepare.log 2>&1
check "classify: the examples prepare" test $? = 0
for spec in "lstm last 0 0" "gru mean 0 0" "rnn max 0 0" "lstm mean 8 25" "gru max 8 0"; do
  set -- $spec
  cell=$1 pool=$2 embed=$3 maxlen=$4
  out=cls_${cell}_${pool}_$embed
  "$charnn" train --task classify --data ab.h5 --out "$out" --cell "$cell" --pool "$pool" \
    --embed "$embed" --max-len "$maxlen" --layers 2 --hidden 16 --batch 8 --steps 40 --lr 0.01 \
    --threads 1 --no-progress --eval-every 0 > "$out.log" 2>&1
  check "classify $cell, pool $pool (embed $embed, max-len $maxlen) trains" test $? = 0
  ours=$("$charnn" eval --model "$out/model.h5" --data ab.h5 --split test --json)
  theirs=$($py "$src/tests/pytorch_interop.py" "$out/model.h5" ab.h5 test)
  echo "  charnn: $ours"
  echo "  torch:  $theirs"
  check "classify $cell, pool $pool: torch reproduces charnn's eval loss to 1e-5" $py -c "
import json
a=json.loads('''$ours'''); b=json.loads('''$theirs''')
assert a['examples']==b['examples']==80, (a['examples'], b['examples'])
assert abs(a['loss']-b['loss']) <= 1e-5*abs(b['loss']), (a['loss'], b['loss'])
assert abs(a['accuracy']-b['accuracy']) < 1e-9, (a['accuracy'], b['accuracy'])"
done
# bidirectional: a classifier and a tagger load into torch's bidirectional=True modules
$py -c "
import random
r = random.Random(7)
print('text\ttags:NY')
for i in range(300):
    n = r.randint(3, 25)
    s = ''.join(r.choice('ab()') for _ in range(n))
    print(s + '\t' + ''.join('Y' if c == 'a' and ')' in s[k:] else 'N' for k, c in enumerate(s)))" > br.tsv
"$charnn" prepare --task tag br.tsv --out br.h5 --val-frac 0.1 --test-frac 0.2 > prepare_tag.log 2>&1
check "tag: the examples prepare" test $? = 0
for spec in "classify lstm 0 ab.h5" "classify gru 8 ab.h5" "tag lstm 0 br.h5" "tag gru 8 br.h5" "tag rnn 0 br.h5"; do
  set -- $spec
  task=$1 cell=$2 embed=$3 data=$4
  out=bi_${task}_${cell}_$embed
  "$charnn" train --task "$task" --data "$data" --out "$out" --cell "$cell" --embed "$embed" \
    --bidirectional --layers 2 --hidden 8 --batch 8 --steps 30 --lr 0.01 --threads 1 \
    --no-progress --eval-every 0 > "$out.log" 2>&1
  check "bidirectional $task $cell (embed $embed) trains" test $? = 0
  ours=$("$charnn" eval --model "$out/model.h5" --data "$data" --split test --json)
  theirs=$($py "$src/tests/pytorch_interop.py" "$out/model.h5" "$data" test)
  echo "  charnn: $ours"
  echo "  torch:  $theirs"
  check "bidirectional $task $cell: torch (bidirectional=True) reproduces charnn's eval loss to 1e-5" $py -c "
import json
a=json.loads('''$ours'''); b=json.loads('''$theirs''')
assert a['examples']==b['examples'], (a['examples'], b['examples'])
assert abs(a['loss']-b['loss']) <= 1e-5*abs(b['loss']), (a['loss'], b['loss'])
assert abs(a['accuracy']-b['accuracy']) < 1e-6, (a['accuracy'], b['accuracy'])  # charnn prints 6 decimals"
done
# vector classifiers: a known rule over 3 numbers, as an MLP (--layers 0) and one recurrent step
$py -c "
import numpy as np, h5py
r = np.random.RandomState(3)
x = np.stack([r.normal(80, 15, 400), r.uniform(20, 80, 400), r.normal(170, 10, 400)], 1)
s = 0.5 * x[:, 0] + 0.3 * x[:, 1] - 0.2 * x[:, 2]
with h5py.File('bp.h5', 'w') as f:
    f['features'] = x.astype(np.float32)
    f['labels'] = (s > np.median(s)).astype(np.int32)
    f['label_names'] = np.array([b'normal', b'high'])"
for spec in "lstm 0 tanh" "lstm 0 relu" "lstm 1 tanh" "gru 2 tanh"; do
  set -- $spec
  cell=$1 layers=$2 act=$3
  out=feat_${cell}_${layers}_$act
  "$charnn" train --task classify --features bp.h5 --out "$out" --cell "$cell" --layers "$layers" --activation "$act" \
    --hidden 8 --batch 16 --steps 40 --lr 0.01 --threads 1 --no-progress --eval-every 0 > "$out.log" 2>&1
  check "features $cell, layers $layers ($act) trains" test $? = 0
  ours=$("$charnn" eval --model "$out/model.h5" --data bp.h5 --split all --json)
  theirs=$($py "$src/tests/pytorch_interop.py" "$out/model.h5" bp.h5)
  echo "  charnn: $ours"
  echo "  torch:  $theirs"
  check "features $cell, layers $layers ($act): torch reproduces charnn's eval loss to 1e-5" $py -c "
import json
a=json.loads('''$ours'''); b=json.loads('''$theirs''')
assert a['examples']==b['examples']==400, (a['examples'], b['examples'])
assert abs(a['loss']-b['loss']) <= 1e-5*abs(b['loss']), (a['loss'], b['loss'])
assert abs(a['accuracy']-b['accuracy']) < 1e-6, (a['accuracy'], b['accuracy'])"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
