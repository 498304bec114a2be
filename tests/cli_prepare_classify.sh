#!/usr/bin/env bash
# `charnn prepare --task classify`: labelled examples into an examples file
# through the command line (the library is tested in test_examples.c): a TSV
# with a header, the counts it prints, a bad column with one line naming the
# file, line and the header's columns and no file left, a given test file, and
# the names folder deduplicated when ../shared/data is there.
#
#   bash tests/cli_prepare_classify.sh <path-to-charnn> <source-dir>
set -u

CHARNN=${1:?usage: cli_prepare_classify.sh CHARNN SOURCE_DIR}
SRC=${2:?usage: cli_prepare_classify.sh CHARNN SOURCE_DIR}
WORK=$PWD/cli_prepare_classify.d
rm -rf "$WORK"
mkdir -p "$WORK"
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
notok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }

printf 'id\ttext\tlabel\n' >"$WORK/train.tsv"
for i in $(seq 1 20); do
    printf '%d\tgood film number %d\tpos\n%d\tbad film number %d\tneg\n' "$i" "$i" "$((i + 100))" "$i"
done >>"$WORK/train.tsv"
printf 'id\ttext\tlabel\n1\tgood film number 1\tpos\n2\tterrible\tneg\n' >"$WORK/test.tsv"

"$CHARNN" prepare --task classify "$WORK/train.tsv" --out "$WORK/ex.h5" --test-frac 0.2 \
    --val-frac 0.1 >"$WORK/out" 2>"$WORK/err"
check "a TSV prepares (exit $?)" test -s "$WORK/ex.h5"
check "it reports 40 examples in 2 classes: $(head -1 "$WORK/out")" \
    grep -q '^examples: 40 (train 28, val 4, test 8), 2 classes' "$WORK/out"

"$CHARNN" prepare --task classify "$WORK/train.tsv" --out "$WORK/bad.h5" --text-col review \
    >"$WORK/out" 2>"$WORK/err"
status=$?
check "a missing column exits 1 (got $status)" test "$status" -eq 1
want="charnn: '$WORK/train.tsv' line 1: no column 'review' (the header has: id, text, label)"
check "the error names the file, the line and the columns: $(cat "$WORK/err")" \
    test "$(cat "$WORK/err")" = "$want"
check "no file is left" test ! -e "$WORK/bad.h5"

"$CHARNN" prepare --task classify "$WORK/train.tsv" --test "$WORK/test.tsv" --dedup \
    --out "$WORK/given.h5" >"$WORK/out" 2>"$WORK/err"
check "a given test file keeps all its examples and dedup drops the training copy: $(head -1 "$WORK/out")" \
    grep -q '^examples: 41 (train 37, val 2, test 2), 2 classes' "$WORK/out"

"$CHARNN" prepare "$WORK/train.tsv" --out "$WORK/lm.h5" --dedup >"$WORK/out" 2>"$WORK/err"
status=$?
check "--dedup without --task classify is a usage error (got $status)" test "$status" -eq 2

NAMES=$SRC/../shared/data/names
if [ -d "$NAMES" ]; then
    "$CHARNN" prepare --task classify "$NAMES" --format dir --dedup --out "$WORK/names.h5" \
        >"$WORK/out" 2>"$WORK/err"
    check "names: 17,459 distinct of 20,074 in 18 classes: $(head -1 "$WORK/out")" \
        grep -q '^examples: 17459 (.*), 18 classes' "$WORK/out"
    check "names: 2,615 duplicates dropped" grep -q '^duplicates: 2615 .*dropped' "$WORK/out"
else
    echo "# skip: $NAMES is missing (the names checks need ../shared/data)"
fi

echo "# $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
