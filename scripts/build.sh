#!/usr/bin/env bash
# Configures (once) and builds calima into ./build with ninja and ccache.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${CMAKE_BUILD_TYPE:-Debug}
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
cmake --build build -j"${JOBS:-2}"
