#!/usr/bin/env bash
# Runs every benchmark of docs/performance.md once, one after the other, from one build, and
# draws the charts: the JSON (and each bench's progress log) go to OUT (default docs/perf).
#
#   bench/run-all.sh [OUT]          BUILD=build (the build directory)
#
# Takes about 8 minutes on the 2-core machine. Run it on an idle machine: stop other VMs and
# stray calima supervisors first (each idle supervisor costs `limactl list` a few ms).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${BUILD:-$ROOT/build}/bin
OUT=${1:-$ROOT/docs/perf}
mkdir -p "$OUT"
if pgrep -x calima-supervis > /dev/null || pgrep -f qemu-system > /dev/null; then
  echo "run-all: a calima supervisor or a QEMU is running; the figures would not be from an idle machine" >&2
  exit 1
fi
run() {   # name, command...
  local name=$1; shift
  echo "run-all: $name ..." >&2
  "$@" --json > "$OUT/$name.json.tmp" 2> "$OUT/$name.log"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
}
run forward "$BIN/calima-forward-bench"
run list "$BIN/calima-list-bench" --rounds 15
run vm-forward "$BIN/calima-vm-bench" forward
run vm-start "$BIN/calima-vm-bench" start
run vm-cost "$BIN/calima-vm-bench" cost
{ git -C "$ROOT" rev-parse --short HEAD; date -u +%FT%TZ; uptime; } > "$OUT/run.txt"
if command -v gnuplot > /dev/null; then
  python3 "$HERE/plot.py" "$OUT"
else
  echo "run-all: gnuplot not found (apt-get install gnuplot-nox): no charts" >&2
fi
