#!/usr/bin/env bash
# Is the working tree any slower than an earlier revision? Builds both in release mode and
# runs their language-model training side by side (bench/before_after.py):
#
#   bash bench/before_after.sh BASE_REV [--repeats N] [--configs NAMES] [--setups NAMES] [--quick]
#
# BASE_REV is checked out into a temporary git worktree and built there; the working tree
# is built into build/ by scripts/setup.sh. Needs a quiet machine (about 10 minutes with
# the defaults: LSTM 2x512 and LSTM 1x128, 1 thread and 1 rank x 2 threads, 5 repeats).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
[ $# -ge 1 ] || { echo "usage: bash bench/before_after.sh BASE_REV [bench/before_after.py flags]" >&2; exit 2; }
base_rev=$1; shift
base_sha=$(git -C "$top" rev-parse --verify "$base_rev^{commit}") ||
  { echo "before_after: '$base_rev' is not a revision of this repository" >&2; exit 2; }

bash "$top/scripts/setup.sh"
wt=$(mktemp -d "${TMPDIR:-/tmp}/charnn-base-XXXXXX")
cleanup() { git -C "$top" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"; }
trap cleanup EXIT
git -C "$top" worktree add -q --detach "$wt" "$base_sha"
echo "before_after: building $base_rev ($base_sha) in $wt"
cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$wt/build" -j "$(nproc)" --target charnn >/dev/null
py=/usr/bin/python3; [ -x "$py" ] || py=python3
"$py" "$here/before_after.py" --a "$wt/build/charnn" --b "${CHARNN_BUILD_DIR:-$top/build}/charnn" \
  --a-label "$(git -C "$top" rev-parse --short "$base_sha")" --b-label "working tree" "$@"
