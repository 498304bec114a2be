#!/usr/bin/env bash
# Install what charnn needs on Debian 12 (apt-get; as root or through sudo) and
# build it in release mode into build/. Used by jobs/quickstart.sh,
# tests/run.sh and .ci/run; safe to run again.
#
#   scripts/setup.sh [extra Debian packages...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          hdf5-tools libopenblas-dev libopenblas-openmp-dev libcunit1-dev fortunes "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd, package scripts must not try to start daemons (munge,
  # slurm): a policy-rc.d that denies service starts while we install.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    policy=1
  fi
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi
build=${CHARNN_BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" 2>&1 | grep -E 'warning|error|Error' || true
test -x "$build/charnn" || { echo "setup: build failed" >&2; exit 1; }
echo "setup: built $build/charnn"
