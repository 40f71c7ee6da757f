#!/usr/bin/env bash
# The main job: boot the test guest under calima in a scratch LIMA_HOME, run a command in it
# over SSH, show it in `limactl list`, and stop it again (no QEMU is left running).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-test-guest.sh
limactl=$PWD/build/bin/limactl
scratch=$(mktemp -d /tmp/calima-demo.XXXXXX)
export LIMA_HOME=$scratch/lima
cleanup() {
  "$limactl" supervisor stop >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
set -x
"$limactl" start --tty=false template:test
"$limactl" shell test uname -a
"$limactl" ls
"$limactl" stop test
