#!/usr/bin/env bash
# charnn vs the PyTorch peer, on this machine, in one command:
#
#   bash bench/run.sh [--quick] [--repeats N] [--configs NAMES] [--skip-peer] [--no-comm]
#
# 1. scripts/setup.sh: installs charnn's build dependencies and builds it in release mode
#    into build/ (or $CHARNN_BUILD_DIR).
# 2. Installs the peer's packages (Debian's python3-torch, python3-numpy, and
#    libopenblas0-openmp for its best 2-thread setup) if they are missing. If that fails
#    the benchmark still runs charnn and says "peer skipped: ...".
# 3. Compiles bench/fma_peak.c (the FP32 FMA peak that MFU is measured against).
# 4. Runs bench/bench.py, which prints the table and writes
#    bench/results/results-<host>-<date>.{json,md}.
# Every other argument is passed to bench/bench.py (see `python3 bench/bench.py --help`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${CHARNN_BUILD_DIR:-$top/build}
export CHARNN_BUILD_DIR=$build

echo "bench: building charnn (release) into $build"
bash "$top/scripts/setup.sh"

peer_note=""
peer_pkgs=(python3-torch python3-numpy libopenblas0-openmp)
missing=()
for p in "${peer_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  if [ "$sudo" = none ]; then
    peer_note="cannot install ${missing[*]} (not root and no sudo)"
  else
    echo "bench: installing ${missing[*]} for the PyTorch peer"
    export DEBIAN_FRONTEND=noninteractive
    if ! { $sudo apt-get -o DPkg::Lock::Timeout=900 update -qq &&
           $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
             "${missing[@]}" >/dev/null; }; then
      peer_note="apt-get install ${missing[*]} failed"
    fi
  fi
fi
if [ -z "$peer_note" ] && ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  peer_note="/usr/bin/python3 cannot import torch"
fi
if [ -n "$peer_note" ]; then
  echo "bench: peer skipped: $peer_note"
  export CHARNN_BENCH_PEER_SKIP="$peer_note"
fi

echo "bench: compiling bench/fma_peak.c"
mkdir -p "$here/results"
fma_bin="$build/fma_peak"
gcc -std=gnu11 -O3 -march=native -mfma -fopenmp "$here/fma_peak.c" -o "$fma_bin"

py=/usr/bin/python3; [ -x "$py" ] || py=python3
exec "$py" "$here/bench.py" --charnn "$build/charnn" --fma-peak "$fma_bin" "$@"
