#!/usr/bin/env bash
# Builds calima and runs the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j"${JOBS:-2}" --timeout 300
