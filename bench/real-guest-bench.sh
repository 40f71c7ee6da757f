#!/usr/bin/env bash
# The real guest's boot and mounts, measured on one image in one run (docs/real-guest.md):
#
#   boot     per round, alternating: `limactl start` of the Debian cloud image to READY, and the
#            same QEMU command line started by hand, polled with ssh until the guest's sshd
#            answers and until its boot scripts are done (/run/lima-boot-done). In the calima
#            round the guest's own boot-done time is read from the guest (clock offset measured
#            over ssh), so "calima adds" = READY - boot done, of the same boot.
#   mounts   one 100 MiB file written into the guest's copy of a share and read back, each way
#            (host→guest: the guest reads a file the host wrote; guest→host: the guest writes),
#            for reverse-sshfs and virtiofs on the real guest and 9p on the test guest (Debian's
#            cloud kernel has no 9p), page cache dropped in the guest before each read.
#
# Usage: bench/real-guest-bench.sh [--rounds N] [--json FILE] [--skip-mounts] [--skip-boot]
# Needs: build/bin/limactl, scripts/build-real-guest.sh and scripts/build-test-guest.sh outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
JSON=""
MOUNTS=1
BOOT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --skip-mounts) MOUNTS=0; shift ;;
    --skip-boot) BOOT=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--json FILE] [--skip-mounts]" >&2; exit 2 ;;
  esac
done

LIMACTL=$PWD/build/bin/limactl
IMG=${CALIMA_REAL_GUEST_DIR:-$HOME/.cache/calima/real-guest}/debian-12-genericcloud-amd64.qcow2
[ -x "$LIMACTL" ] || { echo "build first (scripts/build.sh)" >&2; exit 1; }
[ -r "$IMG" ] || { echo "no real guest: scripts/build-real-guest.sh" >&2; exit 1; }

export LIMA_HOME
WORK=$(mktemp -d /tmp/calima-bench.XXXXXX)
LIMA_HOME=$WORK/lima
SHARE=$WORK/share
mkdir -p "$LIMA_HOME" "$SHARE"
chmod 0777 "$SHARE"
BARE_PID=""
cleanup() {
  [ -n "$BARE_PID" ] && kill -9 "$BARE_PID" 2>/dev/null || true
  "$LIMACTL" supervisor stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
results=()
emit() { results+=("$1"); echo "$1" >&2; }

# -- boot ---------------------------------------------------------------------------------------
"$LIMACTL" create --name rb --set ".images=[{\"location\":\"$IMG\",\"arch\":\"x86_64\"}] | .containerd.system=false | .containerd.user=false | .mounts=[]" template:debian >/dev/null 2>&1
INST=$LIMA_HOME/rb
KEY=$LIMA_HOME/_config/user
# First boot: cloud-init's first-boot work (keys, growpart) is not what is compared.
"$LIMACTL" start --tty=false rb >/dev/null 2>&1
"$LIMACTL" stop rb >/dev/null 2>&1
USER_NAME=$(awk '/^  User / { print $2 }' "$INST/ssh.config")
ssh_to() { # the instance's SSH port is picked anew at each start
  ssh -F /dev/null -i "$KEY" -p "$(awk '/^  Port / { print $2 }' "$INST/ssh.config")" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
    -o ConnectTimeout=2 -o LogLevel=ERROR "$USER_NAME@127.0.0.1" "$@"
}

[ "$BOOT" = 1 ] || ROUNDS=0
for r in $(seq "$ROUNDS"); do
  # calima: limactl start to READY; the guest says when its boot scripts were done
  t0=$(now)
  "$LIMACTL" start --tty=false rb >/dev/null 2>&1
  t1=$(now)
  h0=$(now); g=$(ssh_to 'date +%s.%N; stat -c %.6Y /run/lima-boot-done'); h1=$(now)
  gnow=$(echo "$g" | sed -n 1p); gdone=$(echo "$g" | sed -n 2p)
  offset=$(awk -v g="$gnow" -v a="$h0" -v b="$h1" 'BEGIN { printf "%.6f", g - (a + b) / 2 }')
  done_host=$(sub "$gdone" "$offset")
  ready=$(sub "$t1" "$t0"); adds=$(sub "$t1" "$done_host"); guest_done=$(sub "$done_host" "$t0")
  emit "{\"bench\":\"boot\",\"round\":$r,\"mode\":\"calima\",\"ready_s\":$ready,\"guest_boot_done_s\":$guest_done,\"calima_adds_s\":$adds}"
  tr '\0' '\n' <"/proc/$(cat "$INST/qemu.pid")/cmdline" >"$WORK/qemu.argv"
  "$LIMACTL" stop rb >/dev/null 2>&1
  # bare QEMU: the same command line (same disk, cidata, SSH port), by hand
  mapfile -t argv <"$WORK/qemu.argv"
  rm -f "$INST/qemu.pid" "$INST"/*.sock
  t0=$(now)
  setsid "${argv[@]}" >/dev/null 2>&1 &
  BARE_PID=$!
  until ssh_to true 2>/dev/null; do sleep 0.2; done
  t_ssh=$(now)
  until ssh_to 'test -e /run/lima-boot-done' 2>/dev/null; do sleep 0.2; done
  t_done=$(now)
  emit "{\"bench\":\"boot\",\"round\":$r,\"mode\":\"bare\",\"ssh_s\":$(sub "$t_ssh" "$t0"),\"guest_boot_done_s\":$(sub "$t_done" "$t0")}"
  ssh_to 'sudo systemctl poweroff' >/dev/null 2>&1 || true
  for _ in $(seq 300); do kill -0 "$BARE_PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$BARE_PID" 2>/dev/null || true
  BARE_PID=""
done

# -- mounts -------------------------------------------------------------------------------------
mount_round() { # instance type: 100 MiB each way through the share, timed inside the guest
  local inst=$1 type=$2
  head -c 104857600 /dev/urandom >"$SHARE/host.bin"
  sync
  "$LIMACTL" shell "$inst" sudo sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches' >/dev/null 2>&1
  local read_s write_s
  read_s=$("$LIMACTL" shell "$inst" sh -c "a=\$(date +%s.%N); cat '$SHARE/host.bin' > /dev/null; b=\$(date +%s.%N); echo \"\$b - \$a\" | awk '{ printf \"%.2f\", \$1 - \$3 }'" 2>/dev/null)
  write_s=$("$LIMACTL" shell "$inst" sh -c "a=\$(date +%s.%N); head -c 104857600 /dev/zero > '$SHARE/guest.bin'; sync; b=\$(date +%s.%N); echo \"\$b - \$a\" | awk '{ printf \"%.2f\", \$1 - \$3 }'" 2>/dev/null)
  local size; size=$(stat -c %s "$SHARE/guest.bin")
  emit "{\"bench\":\"mount\",\"type\":\"$type\",\"host_to_guest_MiBps\":$(awk -v s="$read_s" 'BEGIN { printf "%.1f", 100 / s }'),\"guest_to_host_MiBps\":$(awk -v s="$write_s" 'BEGIN { printf "%.1f", 100 / s }'),\"guest_to_host_bytes\":$size}"
  rm -f "$SHARE/host.bin" "$SHARE/guest.bin"
}

if [ "$MOUNTS" = 1 ]; then
  for type in reverse-sshfs virtiofs; do
    "$LIMACTL" edit --mount-type "$type" --set ".mounts=[{\"location\":\"$SHARE\",\"writable\":true}]" rb >/dev/null 2>&1
    "$LIMACTL" start --tty=false rb >/dev/null 2>&1
    mount_round rb "$type"
    "$LIMACTL" stop rb >/dev/null 2>&1
  done
  "$LIMACTL" create --name t9 --mount-type 9p --set ".mounts=[{\"location\":\"$SHARE\",\"writable\":true}]" template:test >/dev/null 2>&1
  "$LIMACTL" start --tty=false t9 >/dev/null 2>&1
  mount_round t9 "9p (test guest)"
  "$LIMACTL" stop t9 >/dev/null 2>&1
fi

# -- summary ------------------------------------------------------------------------------------
printf '%s\n' "${results[@]}" >"$WORK/results.jsonl"
[ -n "$JSON" ] && cp "$WORK/results.jsonl" "$JSON"
col() { grep "\"mode\":\"$1\"" "$WORK/results.jsonl" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" | median; }
[ "$BOOT" = 1 ] && {
echo
echo "| median of $ROUNDS rounds | seconds |"
echo "| --- | --- |"
echo "| bare QEMU: boot to SSH | $(col bare ssh_s) |"
echo "| bare QEMU: boot to boot scripts done | $(col bare guest_boot_done_s) |"
echo "| calima: guest's boot scripts done | $(col calima guest_boot_done_s) |"
echo "| calima: \`limactl start\` to READY | $(col calima ready_s) |"
echo "| calima adds (READY - boot done, same boot) | $(col calima calima_adds_s) |"
}
if [ "$MOUNTS" = 1 ]; then
  echo
  echo "| mount | host → guest MiB/s | guest → host MiB/s |"
  echo "| --- | --- | --- |"
  grep '"bench":"mount"' "$WORK/results.jsonl" | sed 's/.*"type":"\([^"]*\)","host_to_guest_MiBps":\([0-9.]*\),"guest_to_host_MiBps":\([0-9.]*\).*/| \1 | \2 | \3 |/'
fi
