#!/usr/bin/env bash
# Configures (once) and builds calima into ./build with ninja and ccache.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${CMAKE_BUILD_TYPE:-Debug}
# jq's and oniguruma's Debian sources: lima-guestagent's static yq (guest/static_yq/)
scripts/fetch-guest-sources.sh
if [ ! -f build/build.ninja ] || ! grep -q '^CALIMA_GUEST_SRC:' build/CMakeCache.txt; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
cmake --build build -j"${JOBS:-2}"
