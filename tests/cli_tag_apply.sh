#!/usr/bin/env bash
# `charnn tag`: a spacing model trained on generated Korean-like text (words
# drawn from a small lexicon whose syllables never repeat across words, so the
# spacing is fully determined by the characters) restores the spaces with
# --apply exactly, scores F1 1 with --eval --json on held-out sentences, tags
# each line as text<TAB>tags by default, and writes an --html page with
# wrong spaces marked, rendered in headless Chromium; a model of another task
# and --apply on a non-spacing tagger are refused by exact text.
#
#   bash tests/cli_tag_apply.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_tag_apply.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_tag_apply.sh CHARNN SOURCE_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
WORK=$PWD/cli_tag_apply.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
export OMP_NUM_THREADS=1

gen() { # seed lines file
    /usr/bin/python3 - "$@" <<'PY'
import random, sys
r = random.Random(int(sys.argv[1]))
lex = ["가나", "다라마", "바", "사아자", "차카"]
with open(sys.argv[3], "w") as f:
    for _ in range(int(sys.argv[2])):
        f.write(" ".join(r.choice(lex) for _ in range(r.randint(2, 6))) + "\n")
PY
}
gen 1 1500 train.txt
gen 2 50 test.txt
"$CHARNN" prepare --task tag --derive spacing train.txt --val-frac 0.05 --test-frac 0 --out sp.h5 >prep.log 2>&1
check "prepare a spacing corpus (exit $?)" test -s sp.h5
"$CHARNN" train --task tag --data sp.h5 --bidirectional --cell gru --layers 1 --hidden 16 \
    --batch 32 --steps 200 --lr 0.01 --eval-every 100 --threads 1 --no-progress --out m >train.log 2>&1
check "a bidirectional spacing tagger trains" test -s m/model.h5 || show train.log
check "validation reports the spaces' precision, recall and F1" has train.log "val spaces: precision "

tr -d ' ' <test.txt >nospace.txt
"$CHARNN" tag --model m/model.h5 --apply nospace.txt >applied.txt 2>err
check "--apply restores every space of the held-out sentences" diff applied.txt test.txt
"$CHARNN" tag --model m/model.h5 --apply - <nospace.txt >applied2.txt 2>err
check "--apply reads stdin" diff applied2.txt test.txt
"$CHARNN" tag --model m/model.h5 <<<"가나바" >tags.txt 2>err
check "the default output is text<TAB>tags: $(cat tags.txt)" test "$(cat tags.txt)" = "가나바	IBI"

j=$("$CHARNN" tag --model m/model.h5 --eval --json test.txt)
check "--eval --json: F1 1, every word restored: $j" \
    bash -c "grep -q '\"space_f1\":1.000000' <<<'$j' && grep -q '\"words_exact\":1.000000' <<<'$j' && grep -q '\"lines\":50,' <<<'$j'"
"$CHARNN" tag --model m/model.h5 --eval test.txt >eval.txt
check "--eval as text: $(tail -1 eval.txt)" has eval.txt "spaces: precision 1.0000 recall 1.0000 F1 1.0000"

# a page with wrong spaces: score against a wrongly spaced copy
printf '가 나바\n다라마바\n' >wrong.txt
"$CHARNN" tag --model m/model.h5 --eval --html page.html wrong.txt >wrong.out
check "the page marks a space too many and a missed one" \
    bash -c 'grep -q "class=\"missed\"" page.html && grep -q "class=\"extra\"" page.html'
check "the page is self-contained" bash -c '! grep -Eqi "(src|href)=\"|url\(|@import" page.html'
browser=
for cand in chromium chromium-browser; do
    if command -v "$cand" >/dev/null 2>&1; then browser=$cand; break; fi
done
if [ -n "$browser" ]; then
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d "$WORK/profile.XXXXXX")" --dump-dom "file://$WORK/page.html" \
        >dom.html 2>dump.err
    check "chromium renders the page with both marks and the summary" \
        bash -c 'grep -q "id=\"summary\"" dom.html && grep -c "class=\"extra\"" dom.html | grep -qv "^0$" && grep -q "class=\"missed\"" dom.html'
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d "$WORK/profile.XXXXXX")" --screenshot="$WORK/shot.png" \
        --window-size=800,400 "file://$WORK/page.html" >/dev/null 2>&1
    check "and the screenshot is not blank" /usr/bin/python3 "$SRC/tests/png_colors.py" shot.png 3
else
    echo "# chromium is not installed: the page is not rendered"
fi

# refusals
printf 'abab\n%.0s' {1..30} >lm.txt
"$CHARNN" train --data lm.txt --steps 2 --seq 4 --batch 2 --hidden 4 --layers 1 --no-progress --out lm >/dev/null 2>&1
"$CHARNN" tag --model lm/model.h5 nospace.txt >out 2>err
status=$?
check "a language model is refused (exit $status): $(cat err)" \
    test "$status" -eq 1 -a "$(cat err)" = "charnn: 'lm/model.h5' is a lm model, not a tagger (train --task tag)"
printf 'text\ttags:NY\nab\tNY\nba\tYN\n' >ny.tsv
"$CHARNN" prepare --task tag ny.tsv --val-frac 0 --test-frac 0 --out ny.h5 >/dev/null 2>&1
"$CHARNN" train --task tag --data ny.h5 --steps 2 --batch 2 --hidden 4 --layers 1 --no-progress --out ny >/dev/null 2>&1
"$CHARNN" tag --model ny/model.h5 --apply nospace.txt >out 2>err
status=$?
check "--apply on a non-spacing tagger is refused (exit $status): $(cat err)" \
    test "$status" -eq 1 -a "$(cat err)" = "charnn: --apply needs a spacing model (tags B and I, prepare --derive spacing)"
"$CHARNN" tag --model ny/model.h5 <<<"abz" >out 2>err
check "a character outside the vocabulary names the line: $(cat err)" \
    test "$(cat err)" = "charnn: '<stdin>' line 1: character 'z' is not in the model's vocabulary"

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
