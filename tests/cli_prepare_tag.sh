#!/usr/bin/env bash
# `charnn prepare --task tag`: per-character tags into an examples file (task
# "tag"): text<TAB>tags pairs with a header naming the tags or --tag-set; a
# spacing corpus derived from plain text and from a TSV column (spaces
# removed, B before a space, I otherwise, runs of spaces as one); the
# --min-space-rate filter; errors by exact text and exit status (length
# mismatch, unknown tag, empty line, no tag set), each leaving no file.
#
#   bash tests/cli_prepare_tag.sh <path-to-charnn> <source-dir>
set -u
CHARNN=${1:?usage: cli_prepare_tag.sh CHARNN SOURCE_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
WORK=$PWD/cli_prepare_tag.d
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
if ! /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    echo "skipped: python3-h5py is not installed"
    exit 77
fi

# read_tags FILE: one line per example, "text<TAB>tags", decoded from the file
read_tags() {
    /usr/bin/python3 - "$1" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["task"] in (b"tag", "tag")
v = [chr(c) for c in f["vocab"][:]]
names = [n.decode() if isinstance(n, bytes) else n for n in f["label_names"][:]]
tok, tags, off = f["tokens"][:], f["tags"][:], f["offsets"][:]
for i in range(len(off) - 1):
    a, b = off[i], off[i + 1]
    print("".join(v[t] for t in tok[a:b]) + "\t" + "".join(names[t] for t in tags[a:b]))
PY
}

printf 'text\ttags:BI\nabc\tIBI\nxy\tBI\n' >pairs.tsv
"$CHARNN" prepare --task tag pairs.tsv --out pairs.h5 --val-frac 0 --test-frac 0 >out 2>err
check "pairs with a header prepare (exit $?)" test -s pairs.h5
read_tags pairs.h5 >got
check "the pairs read back: $(tr '\n\t' '|:' <got)" test "$(tr '\n\t' '|:' <got)" = "abc:IBI|xy:BI|"

printf '가나다\tXYX\n' >cjk.tsv
"$CHARNN" prepare --task tag --tag-set XY cjk.tsv --out cjk.h5 --val-frac 0 --test-frac 0 >out 2>err
check "--tag-set, code points: $(read_tags cjk.h5 | tr '\t' ':')" test "$(read_tags cjk.h5 | tr '\t' ':')" = "가나다:XYX"

printf '아버지가  방에 들어가신다 \n\n   \nab cd\n' >plain.txt
"$CHARNN" prepare --task tag --derive spacing plain.txt --out sp.h5 --val-frac 0 --test-frac 0 >out 2>err
check "a spacing corpus from plain text (exit $?)" test -s sp.h5
read_tags sp.h5 >got
check "spaces removed, B before a space, runs of spaces one, the last character I: $(tr '\n\t' '|:' <got)" \
    test "$(tr '\n\t' '|:' <got)" = "아버지가방에들어가신다:IIIBIBIIIII|abcd:IBII|"
check "the empty and blank lines are counted: $(head -1 out)" has out "inputs: 2 examples kept, 2 lines dropped"

printf 'id\tdocument\tlabel\n1\t이 영화 정말 좋다\t1\n2\t이영화정말좋다진짜\t1\n3\t\t0\n' >reviews.tsv
"$CHARNN" prepare --task tag --derive spacing --text-col document --min-space-rate 0.125 \
    reviews.tsv --out rv.h5 --val-frac 0 --test-frac 0 >out 2>err
read_tags rv.h5 >got
check "a TSV column, filtered at one space per 8 characters: $(tr '\n\t' '|:' <got)" \
    test "$(tr '\n\t' '|:' <got)" = "이영화정말좋다:BIBIBII|"
check "the unspaced and empty reviews are dropped and counted" has out "inputs: 1 examples kept, 2 lines dropped (empty or below --min-space-rate)"

# errors: exit 1, one line naming the file and line, nothing written
expect_error() { # what, want, args...
    local what=$1 want=$2; shift 2
    rm -f bad.h5
    "$CHARNN" prepare --task tag "$@" --out bad.h5 >out 2>err
    local status=$?
    check "$what: exit 1 (got $status)" test "$status" -eq 1
    check "$what: $(cat err)" test "$(cat err)" = "$want"
    check "$what: no file left" test ! -e bad.h5 -a -z "$(ls | grep -F 'bad.h5')"
}
printf 'abc\tIB\n' >short.tsv
expect_error "a length mismatch" "charnn: 'short.tsv' line 1: the text has 3 characters but 2 tags" --tag-set BI short.tsv
printf 'text\ttags:BI\nab\tII\nabc\tIBX\n' >unknown.tsv
expect_error "an unknown tag" "charnn: 'unknown.tsv' line 3: unknown tag 'X' at character 3 (the tags are 'BI')" unknown.tsv
printf 'ab\tII\n\nab\tBI\n' >empty.tsv
expect_error "an empty line" "charnn: 'empty.tsv' line 2: empty line" --tag-set BI empty.tsv
printf 'ab\tII\n' >noset.tsv
expect_error "no tag set" "charnn: 'noset.tsv' line 1: no tag set: give --tag-set or a first line 'text<TAB>tags:BI'" noset.tsv
printf 'ab II\n' >notab.tsv
expect_error "no tab" "charnn: 'notab.tsv' line 1: no tab between the text and its tags" --tag-set BI notab.tsv

"$CHARNN" prepare --task tag --derive spacing --tag-set BI plain.txt --out bad.h5 >out 2>err
check "--derive with --tag-set is refused: $(cat err)" has err "--derive spacing sets the tags"

echo "# $pass passed, $fail failed"
test "$fail" -eq 0
