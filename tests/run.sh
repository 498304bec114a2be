#!/usr/bin/env bash
# Install, build and run every test (the README's test command; .ci/run calls it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# Beyond the build: h5py and torch for the PyTorch interop test, chromium for
# the HTML page test, munge and slurm for the job-script tests.
"$top/scripts/setup.sh" python3 python3-h5py python3-torch python3-numpy chromium \
  munge slurmctld slurmd slurm-client
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${CHARNN_BUILD_DIR:-$top/build}"
ctest --output-on-failure --timeout 900 "$@"
