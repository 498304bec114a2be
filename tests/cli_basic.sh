#!/usr/bin/env bash
# Core trainer CLI, end to end: usage errors and exit statuses (bad values, bad choices,
# --balance, --steps 0), the command table (every command answers --help), train/eval/sample/
# prepare/inspect on a small text, metrics.jsonl, Unicode text, invalid UTF-8,
# bad inputs, and bit-for-bit determinism of the saved weights.
# Usage: bash tests/cli_basic.sh PATH/TO/charnn SOURCE_DIR   (run from any scratch cwd)
set -u
charnn=$1
src=$2
py=python3
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

work=$PWD/cli_basic_work
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

pass=0; fail=0
# check DESCRIPTION COMMAND...: the check passes when COMMAND exits 0
check() {
  local what=$1; shift
  if "$@"; then echo "ok - $what"; pass=$((pass+1)); return 0; fi
  echo "not ok - $what"; fail=$((fail+1)); return 1
}
# has FILE PATTERN: FILE contains the fixed string PATTERN
has() { grep -qF -- "$2" "$1"; }
# show FILE: echo a file's first lines as diagnostics (after a failure)
show() { sed -n '1,8s/^/    # /p' "$1"; }

# ---- the text: the first 200 KB of tinyshakespeare, or a generated one ----
text=$src/../shared/data/tinyshakespeare.txt
if [ -r "$text" ] && [ -s "$text" ]; then
  head -c 200000 "$text" > text.txt
else
  $py - <<'EOF'
import random
random.seed(11)
names = ['ROMEO', 'JULIET', 'MERCUTIO', 'NURSE', 'KING RICHARD', 'First Citizen']
words = ('the king and queen of a land where rivers run to sea my lord good sir '
         'what say you thou art not so fair love night day sweet death come go '
         'shall I will be done now here there heaven earth blood crown').split()
out = []
n = 0
while n < 200000:
    line = names[random.randrange(len(names))] + ':\n'
    for _ in range(random.randint(1, 4)):
        s = ' '.join(random.choice(words) for _ in range(random.randint(4, 11)))
        line += s[0].upper() + s[1:] + random.choice(['.', ',', '!', '?', ';']) + '\n'
    line += '\n'
    out.append(line)
    n += len(line)
open('text.txt', 'w').write(''.join(out)[:200000])
EOF
fi
check "test text exists" test -s text.txt

# ---- usage errors ----
"$charnn" > noargs.out 2> noargs.err; rc=$?
check "no arguments: exit 2 (got $rc)" test "$rc" = 2

"$charnn" frobnicate > unk.out 2> unk.err; rc=$?
check "unknown command: exit 2 (got $rc)" test "$rc" = 2

"$charnn" train --bogus > bogus.out 2> bogus.err; rc=$?
check "train --bogus: exit 2 (got $rc)" test "$rc" = 2
check "train --bogus: stderr names '--bogus'" has bogus.err "--bogus"
check "train --bogus: stderr shows the usage" has bogus.err "usage: charnn train"

"$charnn" train --data text.txt --layers abc > layers.out 2> layers.err; rc=$?
check "train --layers abc: exit 2 (got $rc)" test "$rc" = 2
check "train --layers abc: stderr names the value 'abc'" has layers.err "abc"
check "train --layers abc: stderr names --layers" has layers.err "--layers"

# A bad --balance is a usage error (issue 19): one line naming the flag and the value, then
# the usage, exit 2, before anything is read or written.
for bad in "2,x" "fast" "1,2"; do
  "$charnn" train --data text.txt --balance "$bad" --steps 1 --out bal > bal.out 2> bal.err; rc=$?
  check "train --balance '$bad': exit 2 (got $rc)" test "$rc" = 2
  check "train --balance '$bad': the first line on stderr names --balance and '$bad'" \
    test "$(head -n 1 bal.err | grep -cF -- "charnn train: --balance '$bad'")" = 1
  check "train --balance '$bad': then the usage" test "$(sed -n 2p bal.err)" = \
    "usage: charnn train --data PATH [--out DIR] [flags]"
done
check "train --balance '1,2' on 1 rank: says 2 weights for 1 rank" has bal.err "gives 2 weights for 1 rank"
check "train --balance errors: no run directory left" test ! -e bal

# --steps 0 used to train a whole epoch; --epochs 0 trained nothing; both together were
# read as --steps alone
"$charnn" train --data text.txt --steps 0 --out steps0 > steps0.out 2> steps0.err; rc=$?
check "train --steps 0: exit 2 (got $rc)" test "$rc" = 2
check "train --steps 0: says it must be at least 1" \
  test "$(head -n 1 steps0.err)" = "charnn train: bad value '0' for --steps: must be at least 1"
check "train --steps 0: shows the usage" has steps0.err "usage: charnn train"
check "train --steps 0: no run directory" test ! -e steps0
"$charnn" train --data text.txt --epochs 0 --out steps0 > epochs0.out 2> epochs0.err; rc=$?
check "train --epochs 0: exit 2 (got $rc)" test "$rc" = 2
check "train --epochs 0: says it must be above 0" \
  test "$(head -n 1 epochs0.err)" = "charnn train: bad value '0' for --epochs: must be above 0"
"$charnn" train --data text.txt --steps 5 --epochs 2 --out steps0 > both.out 2> both.err; rc=$?
check "train --steps with --epochs: exit 2 (got $rc)" test "$rc" = 2
check "train --steps with --epochs: says to give one" \
  test "$(head -n 1 both.err)" = "charnn train: give --steps or --epochs, not both"
check "train --steps/--epochs errors: no run directory" test ! -e steps0

# a bad choice names the flag, the value and every accepted value
badchoice() { # WANT ARGS...: charnn ARGS exits 2 and the first line of stderr is WANT
  local want=$1; shift
  "$charnn" "$@" > choice.out 2> choice.err; rc=$?
  check "$*: exit 2 (got $rc)" test "$rc" = 2
  check "$*: '$want'" test "$(head -n 1 choice.err)" = "$want"
}
badchoice "charnn train: bad value 'tree' for --cell: expected rnn, lstm or gru" \
  train --data text.txt --out choice --cell tree
badchoice "charnn train: bad value 'lbfgs' for --optim: expected adam, sgd, rmsprop or adagrad" \
  train --data text.txt --out choice --optim lbfgs
badchoice "charnn train: bad value 'linear' for --schedule: expected constant, step, exp or cosine" \
  train --data text.txt --out choice --schedule linear
badchoice "charnn train: bad value 'ring' for --allreduce: expected overlap or blocking" \
  train --data text.txt --out choice --allreduce ring
badchoice "charnn eval: bad value 'dev' for --split: expected train, val, test or all" \
  eval --model choice/model.h5 --data text.txt --split dev
badchoice "charnn trace: bad value 'dev' for --split: expected train, val, test or all" \
  trace --model choice/model.h5 --out choice.h5 --split dev
badchoice "charnn generate: bad value 'prose' for --kind: expected structured" \
  generate --kind prose --out choice.txt
check "bad choices: nothing written" test ! -e choice -a ! -e choice.h5 -a ! -e choice.txt
"$charnn" train --data text.txt --layers 17 > range.out 2> range.err; rc=$?
check "train --layers 17: exit 2 (got $rc)" test "$rc" = 2
check "train --layers 17: names the range (0, a plain MLP for --features, to 16)" \
  has range.err "bad value '17' for --layers: must be between 0 and 16"

# ---- the command table: the top-level usage lists every command; each answers --help ----
"$charnn" --help > mhelp.out 2> mhelp.err; rc=$?
check "--help: exit 0 (got $rc)" test "$rc" = 0
cmds=$(sed -n '/^commands:$/,/^$/p' mhelp.out | awk 'NF && $1 != "commands:" { print $1 }')
for c in prepare train eval sample inspect trace analyze generate version; do
  check "--help lists the command '$c'" test -n "$(echo "$cmds" | grep -x -- "$c")"
done
for c in $cmds; do
  "$charnn" "$c" --help > chelp.out 2> chelp.err; rc=$?
  check "$c --help: exit 0 (got $rc)" test "$rc" = 0
  check "$c --help: its own usage line first" \
    test "$(head -n 1 chelp.out | cut -d' ' -f1-3)" = "usage: charnn $c"
  check "$c --help: lists --help" has chelp.out "--help"
  check "$c --help: nothing on stderr" test ! -s chelp.err
done
check "unknown command: names it" test "$(head -n 1 unk.err)" = "charnn: unknown command 'frobnicate'"
check "unknown command: the command list follows" has unk.err "commands:"
"$charnn" version > version.out 2> version.err; rc=$?
check "version: exit 0 (got $rc)" test "$rc" = 0
check "version: 'charnn VERSION'" grep -qE '^charnn [0-9]+\.[0-9]+' version.out
"$charnn" version extra > version.out 2> version.err; rc=$?
check "version extra: exit 2 (got $rc)" test "$rc" = 2
check "version extra: names the argument" has version.err "unexpected argument 'extra'"

"$charnn" train --help > thelp.out 2> thelp.err; rc=$?
check "train --help: exit 0 (got $rc)" test "$rc" = 0
for f in --data --cell --layers --hidden --seq --batch --lr --steps --epochs --seed --threads; do
  check "train --help lists $f" has thelp.out "$f"
done
"$charnn" eval --help > ehelp.out 2> ehelp.err; rc=$?
check "eval --help: exit 0 (got $rc)" test "$rc" = 0
for f in --model --data --split --json; do
  check "eval --help lists $f" has ehelp.out "$f"
done
"$charnn" sample --help > shelp.out 2> shelp.err; rc=$?
check "sample --help: exit 0 (got $rc)" test "$rc" = 0
for f in --model --length --temperature --top-k --prime --seed; do
  check "sample --help lists $f" has shelp.out "$f"
done

# ---- train a small GRU ----
"$charnn" train --data text.txt --cell gru --layers 1 --hidden 32 --seq 20 --batch 8 --steps 40 \
  --eval-every 20 --log-every 10 --threads 1 --no-progress --out run > train.out 2> train.err; rc=$?
check "train gru: exit 0 (got $rc)" test "$rc" = 0 || { show train.err; show train.out; }
check "train: 4 progress lines 'step N/40' (every 10 steps)" \
  test "$(grep -cE '^step (10|20|30|40)/40 ' train.out)" = 4
check "train: a progress line has step, loss, val, gnorm, lr, chars/s, ETA" \
  grep -qE '^step 20/40 .*loss [0-9]+\.[0-9]+ .*val [0-9]+\.[0-9]+ .*gnorm [0-9.]+ .*lr [0-9.]+e[-+][0-9]+ .*[0-9]+ chars/s .*ETA ' train.out
check "train: every progress line has loss, gnorm, lr, chars/s, ETA" \
  test "$(grep -E '^step [0-9]+/40 ' train.out | grep -cE 'loss [0-9.]+ .*gnorm [0-9.]+ .*lr [0-9.e+-]+ .*chars/s .*ETA')" = 4
for f in model.h5 best.h5 metrics.jsonl; do
  check "train: run/$f exists" test -s "run/$f"
done
check "metrics.jsonl: every line is JSON; train lines have step/loss/grad_norm/lr/chars_per_s" $py -c '
import json, sys
train = val = 0
for n, line in enumerate(open(sys.argv[1]), 1):
    o = json.loads(line)
    assert isinstance(o, dict), n
    if o.get("type") == "train":
        train += 1
        for k in ("step", "loss", "grad_norm", "lr", "chars_per_s"):
            assert k in o, (n, k)
        assert o["loss"] > 0 and o["chars_per_s"] > 0, o
    elif o.get("type") == "val":
        val += 1
        assert "val_loss" in o, o
assert train == 4, train
assert val >= 1, val
' run/metrics.jsonl

# ---- eval ----
"$charnn" eval --model run/model.h5 --data text.txt --split test --json --threads 1 > evtest.out 2> evtest.err; rc=$?
check "eval --split test --json: exit 0 (got $rc)" test "$rc" = 0 || show evtest.err
check "eval --json: exactly one JSON object with loss, bpc = loss/ln2, tokens > 0" $py -c '
import json, math, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert isinstance(o, dict)
assert o["loss"] > 0, o
assert abs(o["bpc"] - o["loss"] / math.log(2)) < 1e-4, o
assert o["tokens"] > 0, o
' evtest.out
"$charnn" eval --model run/model.h5 --data text.txt --split all --json --threads 1 > evall.out 2> evall.err; rc=$?
check "eval --split all: exit 0 (got $rc)" test "$rc" = 0 || show evall.err
check "eval: --split all has more tokens than --split test" $py -c '
import json, sys
a = json.loads(open(sys.argv[1]).read()); t = json.loads(open(sys.argv[2]).read())
assert a["tokens"] > t["tokens"] > 0, (a["tokens"], t["tokens"])
' evall.out evtest.out

# ---- sample ----
smp() { "$charnn" sample --model run/model.h5 "$@"; }
smp --temperature 0 --length 50 --seed 1 > g1a.txt 2> g.err; rc1=$?
smp --temperature 0 --length 50 --seed 1 > g1b.txt 2>> g.err; rc2=$?
smp --temperature 0 --length 50 --seed 2 > g2.txt 2>> g.err; rc3=$?
check "sample greedy: exit 0 ($rc1 $rc2 $rc3)" test "$rc1$rc2$rc3" = 000
check "sample greedy: output is not empty" test -s g1a.txt
check "sample greedy: same seed gives identical text" cmp -s g1a.txt g1b.txt
# Without --prime the first character is drawn with the seed (README: "default: a random
# character"); from there greedy decoding must not use the random numbers at all.
smp --temperature 0 --length 50 --prime 'The' --seed 1 > gp1.txt 2>> g.err; rc1=$?
smp --temperature 0 --length 50 --prime 'The' --seed 2 > gp2.txt 2>> g.err; rc2=$?
check "sample greedy --prime: exit 0 ($rc1 $rc2)" test "$rc1$rc2" = 00
check "sample greedy --prime: seeds 1 and 2 give identical text (argmax ignores the seed)" \
  cmp -s gp1.txt gp2.txt
first=$($py -c 'import sys; print(open(sys.argv[1], encoding="utf-8").read()[:1], end="x")' g2.txt)
first=${first%x}
smp --temperature 0 --length 50 --prime "$first" --seed 99 > gfirst.txt 2>> g.err
check "sample greedy --seed 2 == greedy primed with its own first character (seed 99)" \
  cmp -s g2.txt gfirst.txt
smp --temperature 1 --length 200 --seed 1 > t1a.txt 2> t.err; rc1=$?
smp --temperature 1 --length 200 --seed 1 > t1b.txt 2>> t.err; rc2=$?
smp --temperature 1 --length 200 --seed 2 > t2.txt 2>> t.err; rc3=$?
check "sample T=1: exit 0 ($rc1 $rc2 $rc3)" test "$rc1$rc2$rc3" = 000
check "sample T=1: same seed gives identical text" cmp -s t1a.txt t1b.txt
check "sample T=1: seed 1 and seed 2 differ" test -s t1a.txt -a -n "$(cmp t1a.txt t2.txt 2>&1)"
smp --prime 'ROMEO' --length 50 --seed 1 > prime.txt 2> prime.err; rc=$?
check "sample --prime ROMEO: exit 0 (got $rc)" test "$rc" = 0
check "sample --prime ROMEO: output starts with ROMEO" test "$(head -c 5 prime.txt)" = ROMEO
check "sample --prime ROMEO --length 50: 50 characters after the prime" $py -c '
import sys
s = open(sys.argv[1], encoding="utf-8").read()
n = len(s) - 5
assert n in (50, 51) and (n == 50 or s.endswith("\n")), (n, s)
' prime.txt
for bad in '§' 'ROMEж'; do
  smp --prime "$bad" --length 20 > badprime.out 2> badprime.err; rc=$?
  check "sample --prime '$bad' (not in the text): exit 1 (got $rc)" test "$rc" = 1
  check "sample --prime '$bad': a one-line message naming --prime" \
    test "$(wc -l < badprime.err)" = 1 -a -n "$(grep -F -- '--prime' badprime.err)"
done

# ---- Unicode (Korean + emoji) ----
$py - <<'EOF'
import random
random.seed(5)
base = "안녕하세요 세계! 😀 한국어 문장입니다."
lines = [base, "안녕하세요 친구! 😀 한국어 문장입니다.", "오늘은 날씨가 좋습니다 🌞 산책을 갑시다.",
         "프로그램이 잘 작동합니다 👍 감사합니다!", "한글과 이모지 🎉 함께 씁니다.", "세계는 넓습니다 🌏 안녕!"]
with open("ko.txt", "w", encoding="utf-8") as f:
    for i in range(160):
        f.write(base + "\n" if i % 3 == 0 else random.choice(lines) + "\n")
EOF
"$charnn" train --data ko.txt --out ko --cell lstm --hidden 16 --steps 20 --seq 10 --batch 4 \
  --val-frac 0.1 --test-frac 0.1 --threads 1 --no-progress > ko.out 2> ko.err; rc=$?
check "train on Korean + emoji text: exit 0 (got $rc)" test "$rc" = 0 || show ko.err
"$charnn" inspect ko/model.h5 --json > ko.json 2> ko_inspect.err; rc=$?
check "inspect --json: exit 0 (got $rc)" test "$rc" = 0 || show ko_inspect.err
check "inspect --json: vocab_size == distinct code points of the text" $py -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
want = len(set(open(sys.argv[2], encoding="utf-8").read()))
assert o["vocab_size"] == want, (o["vocab_size"], want)
' ko.json ko.txt
"$charnn" sample --model ko/model.h5 --length 200 --seed 4 > ko_sample.txt 2> ko_sample.err; rc=$?
check "sample the Korean model: exit 0 (got $rc)" test "$rc" = 0
check "Korean sample is valid UTF-8 with >= 200 code points, not all ASCII" $py -c '
import sys
s = open(sys.argv[1], "rb").read().decode("utf-8", "strict")
assert len(s) >= 200, len(s)
assert any(ord(c) > 127 for c in s), s
' ko_sample.txt

# ---- invalid UTF-8 ----
printf 'abc\xff\xfedef' > badutf8.txt
"$charnn" train --data badutf8.txt --out bad --steps 2 --no-progress > bad.out 2> bad.err; rc=$?
check "invalid UTF-8: exit 1 (got $rc)" test "$rc" = 1
check "invalid UTF-8: stderr names the file" has bad.err "badutf8.txt"
check "invalid UTF-8: stderr names byte 3" has bad.err "byte 3"
"$charnn" train --data badutf8.txt --out badbytes --bytes --steps 2 --seq 2 --batch 1 --layers 1 \
  --hidden 8 --threads 1 --no-progress > badb.out 2> badb.err; rc=$?
check "invalid UTF-8 with --bytes: trains, exit 0 (got $rc)" test "$rc" = 0 || show badb.err
check "invalid UTF-8 with --bytes: model written" test -s badbytes/model.h5

# ---- missing, empty, too small ----
"$charnn" train --data no_such_file.txt --out missing --steps 2 > miss.out 2> miss.err; rc=$?
check "missing --data file: exit 1 (got $rc)" test "$rc" = 1
check "missing --data file: 'cannot open'" has miss.err "cannot open"
check "missing --data file: message names the file" has miss.err "no_such_file.txt"
: > empty.txt
"$charnn" train --data empty.txt --out empty --steps 2 > empty.out 2> empty.err; rc=$?
check "empty --data file: exit 1 (got $rc)" test "$rc" = 1
check "empty --data file: message names it" has empty.err "empty.txt"
head -c 3000 text.txt > small.txt
"$charnn" train --data small.txt --out small --batch 64 --seq 100 --steps 2 > small.out 2> small.err; rc=$?
check "corpus too small for --batch 64 --seq 100: exit 1 (got $rc)" test "$rc" = 1
check "corpus too small: message says 'too small'" has small.err "too small"

# ---- prepare ----
"$charnn" prepare text.txt --out corpus.h5 > prep.out 2> prep.err; rc=$?
check "prepare: exit 0 (got $rc)" test "$rc" = 0 || show prep.err
check "prepare: corpus.h5 written" test -s corpus.h5
"$charnn" train --data corpus.h5 --out prep --cell gru --layers 1 --hidden 32 --seq 20 --batch 8 \
  --steps 20 --eval-every 10 --threads 1 --no-progress > prept.out 2> prept.err; rc=$?
check "train on a prepared corpus: exit 0 (got $rc)" test "$rc" = 0 || show prept.err
check "train on a prepared corpus: model written" test -s prep/model.h5
"$charnn" eval --model prep/model.h5 --data corpus.h5 --split test --json --threads 1 > prepe.out 2> prepe.err; rc=$?
check "eval on a prepared corpus: exit 0 (got $rc)" test "$rc" = 0 || show prepe.err
check "eval on a prepared corpus: JSON with loss and tokens > 0" $py -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["loss"] > 0 and o["tokens"] > 0, o
' prepe.out

# ---- determinism ----
det() {
  "$charnn" train --data text.txt --out "$1" --seed "$2" --cell gru --layers 1 --hidden 32 --seq 20 \
    --batch 8 --steps 20 --eval-every 0 --threads 1 --no-progress > "$1.out" 2> "$1.err"
}
det detA 7; rcA=$?; det detB 7; rcB=$?; det detC 8; rcC=$?
check "determinism runs: exit 0 ($rcA $rcB $rcC)" test "$rcA$rcB$rcC" = 000
if command -v h5diff > /dev/null; then
  h5diff detA/model.h5 detB/model.h5 /model > h5same.out 2>&1; rc=$?
  check "same seed, --threads 1: /model is byte-identical (h5diff exit $rc)" test "$rc" = 0 || show h5same.out
  h5diff detA/model.h5 detC/model.h5 /model > h5diff.out 2>&1; rc=$?
  check "another seed: /model differs (h5diff exit $rc, want 1)" test "$rc" = 1
else
  check "h5diff (hdf5-tools) is installed" false
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
