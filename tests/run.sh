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
# The portable build (-DCHARNN_NATIVE=OFF: no -march=native, the AVX-512
# kernels chosen at run time) in a directory of its own: the kernel, bf16 and
# gradient tests, then the kernels again with AVX-512 turned off.
portable="${CHARNN_PORTABLE_BUILD_DIR:-$top/build-portable}"
cmake -S "$top" -B "$portable" -DCMAKE_BUILD_TYPE=Release -DCHARNN_NATIVE=OFF >/dev/null
cmake --build "$portable" -j "$(nproc)" --target test_kernels test_bf16 test_gradcheck 2>&1 |
  grep -E 'warning|error|Error' || true
cd "$portable"
ctest --output-on-failure --timeout 900 -R '^test_(kernels|bf16|gradcheck)$'
CHARNN_AVX512=0 ctest --output-on-failure --timeout 900 -R '^test_kernels$'
# The fuzz driver again under ASan/UBSan, in a build of its own (about 4 minutes on 2
# cores; CHARNN_FUZZ_SANITIZE=0 leaves it out).
if [ "${CHARNN_FUZZ_SANITIZE:-1}" = 1 ]; then
  cmake -S "$top" -B "$top/build-asan" -DCHARNN_SANITIZE=ON >/dev/null
  cmake --build "$top/build-asan" -j2 --target charnn
  (cd "$top/build-asan" && FUZZ_CASES=${FUZZ_CASES:-150} bash "$top/tests/cli_fuzz.sh" "$PWD/charnn" "$top")
fi
