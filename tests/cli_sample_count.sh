#!/usr/bin/env bash
# sample --count N: N samples drawn as one batch, each from its own random
# stream, so sample i is the same text whatever N is (with and without a
# prime, at a temperature and with top-k); sample 0 is what a single sample
# draws; the seed --json reports for sample i draws it alone; the text output
# is the samples each followed by a newline, separated by a blank line.
# Usage: bash tests/cli_sample_count.sh PATH/TO/charnn SOURCE_DIR
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
charnn=$1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

work=$PWD/cli_sample_count_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

"$charnn" generate --chars 20000 --seed 5 > text.txt 2> gen.err ||
  { echo "not ok - generate the text"; show gen.err; exit 1; }
"$charnn" train --data text.txt --out run --cell lstm --layers 2 --hidden 48 --embed 8 --seq 20 \
  --batch 8 --steps 40 --eval-every 0 --threads 1 --no-progress > train.out 2> train.err; rc=$?
check "train the model: exit 0 (got $rc)" test "$rc" = 0 || { show train.err; exit 1; }
smp() { "$charnn" sample --model run/model.h5 --length 300 --seed 11 "$@"; }

# compare.py A.jsonl B.jsonl: the first min(count) samples have the same text
cat > same_prefix.py <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
n = min(len(a), len(b))
bad = [i for i in range(n) if a[i]["text"] != b[i]["text"] or a[i]["sample"] != i]
print("differ at", bad[:5]) if bad else None
sys.exit(1 if bad or n == 0 else 0)
PY

for mode in "plain:" "prime:--prime|the " "topk:--temperature|0.7|--top-k|5"; do
  name=${mode%%:*}
  IFS='|' read -r -a extra <<< "${mode#*:}"
  for n in 1 4 9; do
    smp --count $n --json "${extra[@]}" > $name.$n.jsonl 2> err; rc=$?
    check "$name --count $n --json: exit 0 (got $rc), $n lines" \
      test "$rc" = 0 -a "$(lines $name.$n.jsonl)" = "$n" || show err
  done
  check "$name: samples 0..3 of --count 4 equal those of --count 9" python3 same_prefix.py $name.4.jsonl $name.9.jsonl
  check "$name: sample 0 of --count 1 equals that of --count 9" python3 same_prefix.py $name.1.jsonl $name.9.jsonl
  check "$name: the 9 samples are 9 different texts" \
    python3 -c "import json,sys; t=[json.loads(l)['text'] for l in open('$name.9.jsonl')]; sys.exit(len(set(t)) != 9)"
done
check "prime: the 9 samples start with the prime and have 4 + 300 characters" \
  python3 -c "import json,sys; t=[json.loads(l)['text'] for l in open('prime.9.jsonl')]; sys.exit(not (len(t) == 9 and all(s.startswith('the ') and len(s) == 304 for s in t)))"

# sample 0 is the single sample of the plain command (its text output)
smp > one.txt 2> err
check "sample 0 of a batch is the text the plain command writes" \
  python3 -c "import json,sys; t=json.loads(open('plain.9.jsonl').readline())['text']; sys.exit(open('one.txt', encoding='utf-8').read() != t + '\n')"
# the seed reported for sample 5 draws sample 5 alone
s5=$(python3 -c "import json; print([json.loads(l) for l in open('plain.9.jsonl')][5]['seed'])")
"$charnn" sample --model run/model.h5 --length 300 --seed "$s5" > five.txt 2> err
check "--seed $s5 (sample 5's reported seed) draws sample 5" \
  python3 -c "import json,sys; t=[json.loads(l) for l in open('plain.9.jsonl')][5]['text']; sys.exit(open('five.txt', encoding='utf-8').read() != t + '\n')"
# the text layout: each sample and a newline, a blank line between samples
smp --count 4 > four.txt 2> err; rc=$?
check "--count 4 text output: exit 0 (got $rc)" test "$rc" = 0
check "--count 4 text output: the samples, each followed by a newline, separated by a blank line" \
  python3 -c "import json,sys; t=[json.loads(l)['text'] + '\n' for l in open('plain.4.jsonl')]; sys.exit(open('four.txt', encoding='utf-8').read() != '\n'.join(t))"
# --timing
smp --count 3 --timing > /dev/null 2> timing.err; rc=$?
check "--timing: exit 0 (got $rc), one speed line on stderr" \
  grep -qE '^charnn: sampled 900 characters in 3 streams in [0-9.]+ s: [0-9]+ chars/s$' timing.err || show timing.err
# usage
smp --count 0 > /dev/null 2> usage.err; rc=$?
check "--count 0: exit 2 (got $rc)" test "$rc" = 2
check "--count 0: says why" has usage.err "charnn sample: bad value '0' for --count: must be between 1 and 1000000"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
