#!/usr/bin/env bash
# Builds calima, the test guest and the real guest, then runs the whole test suite with CTest (the
# e2e tests, label `e2e`, and the chaos tests, label `chaos`, boot the test guest under QEMU and
# run one at a time; the chaos suite's idle soak alone takes 3.5 minutes; label `real` boots the
# Debian cloud image twice, about 6 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
scripts/build-test-guest.sh
scripts/build-real-guest.sh
export CALIMA_REQUIRE_REAL_GUEST=1 # a missing real guest fails the `real` tests instead of skipping
ctest --test-dir build --output-on-failure -j"${JOBS:-2}" --timeout 600
