#!/usr/bin/env bash
# Build charnn's default corpus from Debian's fortunes package (installed by the
# README's command): every fortune file concatenated in name order, with the
# '%' lines that separate fortunes turned into blank lines. About 5 MB of
# English prose, verse, quotes and dialogue: enough to learn spelling,
# punctuation and line structure, small enough to train on in minutes.
#
#   usage: data/build_corpus.sh [OUT]   (default data/corpus/fortunes.txt)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/corpus/fortunes.txt}
src=/usr/share/games/fortunes
if [ ! -d "$src" ]; then
  echo "build_corpus.sh: $src not found: install Debian's 'fortunes' package (apt-get install fortunes)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
find "$src" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' -print0 | sort -z |
  xargs -0 cat | sed -e 's/^%$//' | tr -d '\000-\010\013-\037\177' > "$tmp"
# The fortunes are not all clean UTF-8; keep only the valid text.
iconv -f UTF-8 -t UTF-8 -c "$tmp" > "$tmp.u" && mv "$tmp.u" "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "corpus: $out ($(wc -c < "$out") bytes)"
