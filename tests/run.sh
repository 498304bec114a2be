#!/usr/bin/env bash
# Install, build and run every test (the README's test command; .ci/run calls it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${CHARNN_BUILD_DIR:-$top/build}"
ctest --output-on-failure --timeout 900 "$@"
