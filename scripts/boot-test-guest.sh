#!/usr/bin/env bash
# Standalone smoke test of calima's test guest (scripts/build-test-guest.sh), without calima:
# builds a NoCloud seed ISO the way Lima does (user-data with the user + key, meta-data, lima.env,
# a Lima-style boot.sh), boots QEMU with TCG and Lima's device set, waits until
#   ssh ... test "$(cat /run/lima-boot-done)" = <iid>
# succeeds (timeout 60 s), checks a few guest facts, then powers the guest off through QMP
# (system_powerdown) and waits for QEMU to exit (SIGKILL after 20 s). Never leaves a QEMU running.
#
# Usage: scripts/boot-test-guest.sh [--no-boot-sh] [--bzimage] [--restart] [--keep]
#   --no-boot-sh  seed without boot.sh: the guest must write the markers itself from lima.env
#   --bzimage     boot vmlinuz (bzImage through SeaBIOS) instead of the PVH vmlinux
#   --restart     boot a second time on the same disk: /home content and the ssh host key must persist
#   --keep        keep the run directory (serial log, key, ISO) and print its path
# Env: CALIMA_TEST_GUEST_DIR (guest artefacts), BOOT_TIMEOUT (60), QEMU_MEM (512), QEMU_CPU (max),
#      QEMU_APPEND (kernel cmdline, default console=ttyS0), QEMU_EXTRA (more QEMU args, word-split),
#      CIDATA_ATTACH (scsi = Lima's virtio-scsi CD | ide = -cdrom, AHCI on q35 | virtio = virtio-blk).
# Needs: qemu-system-x86_64, xorriso, socat, ssh + ssh-keygen.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST=${CALIMA_TEST_GUEST_DIR:-$HOME/.cache/calima/test-guest}
TIMEOUT=${BOOT_TIMEOUT:-60}
BOOTSH=1 KERNEL=vmlinux RESTART=0 KEEP=0
for a in "$@"; do
  case "$a" in
    --no-boot-sh) BOOTSH=0 ;;
    --bzimage) KERNEL=vmlinuz ;;
    --restart) RESTART=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: $0 [--no-boot-sh] [--bzimage] [--restart] [--keep]" >&2; exit 2 ;;
  esac
done
for t in qemu-system-x86_64 xorriso socat ssh ssh-keygen; do
  command -v "$t" > /dev/null || { echo "boot-test-guest: $t not found (run scripts/setup.sh)" >&2; exit 1; }
done

"$HERE/build-test-guest.sh"

RUN=$(mktemp -d "${TMPDIR:-/tmp}/calima-boot-test.XXXXXX")
QPID=""
stop_qemu() {   # never leave a QEMU behind
  if [ -n "$QPID" ] && kill -0 "$QPID" 2> /dev/null; then
    kill -TERM "$QPID" 2> /dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2> /dev/null || break; sleep 0.2; done
    kill -KILL "$QPID" 2> /dev/null || true
    wait "$QPID" 2> /dev/null || true
  fi
  QPID=""
}
cleanup() {
  stop_qemu
  if [ "$KEEP" = 1 ]; then echo "boot-test-guest: run directory kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() {
  echo "boot-test-guest: FAIL: $*" >&2
  if [ -f "$RUN/serial.log" ]; then
    echo "----- serial log ($RUN/serial.log) -----" >&2; tail -n 150 "$RUN/serial.log" >&2; echo "-----" >&2
  fi
  [ ! -s "$RUN/qemu.log" ] || { echo "----- qemu stderr -----" >&2; cat "$RUN/qemu.log" >&2; }
  exit 1
}

# ------------------------------------------------------------------ seed (NoCloud ISO, Lima's layout)
USERNAME=calima
UIDNUM=$(id -u); [ "$UIDNUM" != 0 ] || UIDNUM=1000
HOMEDIR=/home/$USERNAME.linux
IID=iid-$(date +%s)
ssh-keygen -q -t ed25519 -N '' -C calima-boot-test -f "$RUN/key"
mkdir -p "$RUN/seed"
cat > "$RUN/seed/user-data" <<EOF
#cloud-config
# vim:syntax=yaml

growpart:
  mode: auto
  devices: ['/']

users:
  - name: "$USERNAME"
    uid: "$UIDNUM"
    gecos: "calima boot test"
    homedir: "$HOMEDIR"
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: true
    ssh-authorized-keys:
      - "$(cat "$RUN/key.pub")"

write_files:
 - content: |
      #!/bin/sh
      set -eux
      LIMA_CIDATA_MNT="/mnt/lima-cidata"
      LIMA_CIDATA_DEV="/dev/disk/by-label/cidata"
      mkdir -p -m 700 "\${LIMA_CIDATA_MNT}"
      mount -o ro,mode=0700,dmode=0700,overriderockperm,exec,uid=0 "\${LIMA_CIDATA_DEV}" "\${LIMA_CIDATA_MNT}"
      export LIMA_CIDATA_MNT
      exec "\${LIMA_CIDATA_MNT}"/boot.sh
   owner: root:root
   path: /var/lib/cloud/scripts/per-boot/00-lima.boot.sh
   permissions: '0755'
EOF
printf 'instance-id: %s\nlocal-hostname: lima-boot-test\n' "$IID" > "$RUN/seed/meta-data"
cat > "$RUN/seed/network-config" <<'EOF'
version: 2
ethernets:
  eth0:
    match:
      macaddress: '52:55:55:12:34:56'
    dhcp4: true
    set-name: eth0
    dhcp4-overrides:
      route-metric: 200
    dhcp-identifier: mac
    nameservers:
      addresses:
      - 192.168.5.3
EOF
cat > "$RUN/seed/lima.env" <<EOF
LIMA_CIDATA_DEBUG=false
LIMA_CIDATA_NAME=boot-test
LIMA_CIDATA_USER=$USERNAME
LIMA_CIDATA_UID=$UIDNUM
LIMA_CIDATA_COMMENT=calima boot test
LIMA_CIDATA_HOME=$HOMEDIR
LIMA_CIDATA_SHELL=/bin/bash
LIMA_CIDATA_MOUNTS=0
LIMA_CIDATA_DISKS=0
LIMA_CIDATA_GUEST_INSTALL_PREFIX=/usr/local
LIMA_CIDATA_SLIRP_DNS=192.168.5.3
LIMA_CIDATA_SLIRP_GATEWAY=192.168.5.2
LIMA_CIDATA_SLIRP_IP_ADDRESS=192.168.5.15
LIMA_CIDATA_VMTYPE=qemu
LIMA_CIDATA_VSOCK_PORT=0
LIMA_CIDATA_VIRTIO_PORT=io.lima-vm.guest_agent.0
LIMA_CIDATA_PLAIN=1
LIMA_CIDATA_PASSWORDLESS_SUDO=1
LIMA_CIDATA_IID=$IID
EOF
printf 'PARAM_BOOT_TEST=1\n' > "$RUN/seed/param.env"
printf '#LIMA-START\n#LIMA-END\n' > "$RUN/seed/etc_environment"
if [ "$BOOTSH" = 1 ]; then
  # shaped like Lima's boot.sh (shared/spec/lima-runtime.md §3.6), reduced to what plain mode does
  cat > "$RUN/seed/boot.sh" <<'EOF'
#!/bin/sh
set -eu
INFO() { echo "LIMA $(date -Iseconds)| $*"; }
WARNING() { echo "LIMA $(date -Iseconds)| WARNING: $*"; }
RUN=/run
rm -f "$RUN/lima-boot-done"
export LIMA_REBOOT_REQUIRED="$RUN/lima-reboot-required"
rm -f "$LIMA_REBOOT_REQUIRED"
while read -r line; do [ -n "$line" ] && export "$line"; done < "${LIMA_CIDATA_MNT}/lima.env"
while read -r line; do [ -n "$line" ] && export "$line"; done < "${LIMA_CIDATA_MNT}/param.env"
while read -r line; do
  [ "$(expr "$line" : '#')" -eq 0 ] && export "$line"
done < "${LIMA_CIDATA_MNT}/etc_environment"
PATH="${LIMA_CIDATA_MNT}/util:${PATH}"
export PATH
CODE=0
for f in "${LIMA_CIDATA_MNT}/boot.essential.$(uname -s)"/*.sh; do
  [ -e "$f" ] || continue
  INFO "Executing $f"
  if ! "$f"; then WARNING "Failed to execute $f"; CODE=1; fi
done
if [ "${LIMA_CIDATA_PLAIN:-}" != 1 ]; then
  for f in "${LIMA_CIDATA_MNT}/boot.$(uname -s)"/*.sh; do
    [ -e "$f" ] || continue
    INFO "Executing $f"
    if ! "$f"; then WARNING "Failed to execute $f"; CODE=1; fi
  done
fi
if [ ! -f "$LIMA_REBOOT_REQUIRED" ]; then
  echo "$LIMA_CIDATA_IID" > "$RUN/lima-boot-done"
fi
INFO "Exiting with code $CODE"
exit "$CODE"
EOF
  mkdir -p "$RUN/seed/boot.essential.Linux"
  cat > "$RUN/seed/boot.essential.Linux/00-boot-test.sh" <<'EOF'
#!/bin/bash
# proves: bash runs, lima.env and param.env are exported, runs as root, sudo works for the user
set -eu
[ "$(id -u)" = 0 ]
[ "$PARAM_BOOT_TEST" = 1 ]
sudo -iu "$LIMA_CIDATA_USER" true
echo "$LIMA_CIDATA_IID" > /run/boot-test-essential
EOF
  chmod 755 "$RUN/seed/boot.sh" "$RUN/seed/boot.essential.Linux/00-boot-test.sh"
fi
(cd "$RUN/seed" && xorriso -as mkisofs -quiet -output "$RUN/cidata.iso" -volid cidata -joliet -rock . 2>"$RUN/xorriso.log") \
  || fail "xorriso failed"

# ------------------------------------------------------------------ boot
cp --sparse=always "$GUEST/disk.img" "$RUN/disk"      # like Lima: the image becomes the instance disk
truncate -s 1G "$RUN/disk"                         # ... grown to `disk: 1GiB` (qemu-img resize)
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
  done
  return 1
}
SSH=(ssh -F /dev/null -i "$RUN/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o NoHostAuthenticationForLocalhost=yes -o PreferredAuthentications=publickey -o Compression=no
     -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR -o ConnectTimeout=2 -o "User=$USERNAME")
qmp() { printf '{"execute":"qmp_capabilities"}\n{"execute":"%s"}\n' "$1" | socat -t 2 - "UNIX-CONNECT:$RUN/qmp.sock"; }

boot() {   # $1 = label [$2 = retry count]; sets PORT, QPID, T0
  PORT=$(free_port) || fail "no free port"
  rm -f "$RUN"/{serial.log,qmp.sock,ga.sock,serialv.sock,qemu.pid}
  # shellcheck disable=SC2054,SC2206  # commas are QEMU syntax; QEMU_EXTRA is word-split on purpose
  local args=(-m "${QEMU_MEM:-512}" -cpu "${QEMU_CPU:-max}" -machine q35,vmport=off -accel tcg -smp 1
    -global ICH9-LPC.disable_s3=1 -global ICH9-LPC.disable_s4=1
    -kernel "$GUEST/$KERNEL" -append "${QEMU_APPEND:-console=ttyS0} panic=-1" -initrd "$GUEST/initrd.img"
    -drive "file=$RUN/disk,if=none,format=raw,discard=on,id=boot-disk" -device virtio-blk-pci,drive=boot-disk,bootindex=1
    -netdev "user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,hostfwd=tcp:127.0.0.1:$PORT-:22"
    -device virtio-net-pci,netdev=net0,mac=52:55:55:12:34:56 -device virtio-rng-pci
    -display none -vga none -parallel none -monitor none -no-reboot
    -serial "file:$RUN/serial.log"
    -chardev "socket,id=char-serial-virtio,path=$RUN/serialv.sock,server=on,wait=off"
    -device virtio-serial-pci,id=virtio-serial0,max_ports=1 -device virtconsole,chardev=char-serial-virtio,id=console0
    -chardev "socket,id=qga0,path=$RUN/ga.sock,server=on,wait=off"
    -device virtio-serial -device virtserialport,chardev=qga0,name=io.lima-vm.guest_agent.0
    -qmp "unix:$RUN/qmp.sock,server=on,wait=off" -name lima-boot-test -pidfile "$RUN/qemu.pid"
    ${QEMU_EXTRA:-})   # QEMU_EXTRA is word-split on purpose
  # shellcheck disable=SC2054  # commas are QEMU syntax
  case "${CIDATA_ATTACH:-scsi}" in   # Lima: virtio-scsi CD
    scsi) args+=(-drive "id=cdrom0,if=none,format=raw,readonly=on,file=$RUN/cidata.iso"
                 -device virtio-scsi-pci,id=scsi0 -device scsi-cd,bus=scsi0.0,drive=cdrom0) ;;
    ide) args+=(-cdrom "$RUN/cidata.iso") ;;
    virtio) args+=(-drive "file=$RUN/cidata.iso,if=virtio,format=raw,readonly=on") ;;
    *) fail "CIDATA_ATTACH must be scsi, ide or virtio" ;;
  esac
  printf "%q " qemu-system-x86_64 "${args[@]}" > "$RUN/cmdline"   # re-runnable with --keep
  T0=$(now)
  qemu-system-x86_64 "${args[@]}" > "$RUN/qemu.log" 2>&1 &
  QPID=$!
  # wait for this boot's marker (it also proves sshd, the user, the key and boot.sh)
  local t_ssh=""
  while :; do
    if ! kill -0 "$QPID" 2> /dev/null; then
      # another process took the port between free_port and QEMU's bind: try another one
      if grep -q 'Could not set up host forwarding rule' "$RUN/qemu.log" && [ "${2:-0}" -lt 3 ]; then
        QPID=""; boot "$1" $(( ${2:-0} + 1 )); return
      fi
      fail "$1: QEMU exited early"
    fi
    grep -q 'Kernel panic' "$RUN/serial.log" 2> /dev/null && fail "$1: kernel panic"
    awk -v a="$T0" -v b="$(now)" -v t="$TIMEOUT" 'BEGIN { exit !(b - a > t) }' && fail "$1: no boot-done marker after ${TIMEOUT}s"
    # slirp accepts TCP before sshd listens: look for the SSH banner first (cheap, no 2 s ssh timeouts)
    if [ "$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" 2> /dev/null)" = SSH- ] &&
       out=$("${SSH[@]}" -p "$PORT" 127.0.0.1 "cat /run/lima-boot-done 2>/dev/null || echo none" 2>> "$RUN/ssh.err"); then
      [ -n "$t_ssh" ] || t_ssh=$(elapsed "$T0")
      [ "$out" = "$IID" ] && break
    fi
    sleep 0.2
  done
  echo "boot-test-guest: $1: ssh up after ${t_ssh}s, boot-done ($IID) after $(elapsed "$T0")s [kernel $KERNEL, port $PORT]"
}

poweroff() {   # QMP system_powerdown, wait for QEMU to exit (SIGKILL after 20 s)
  local t; t=$(now)
  qmp system_powerdown > "$RUN/qmp.out" 2>&1 || fail "QMP system_powerdown failed: $(cat "$RUN/qmp.out")"
  for _ in $(seq 1 100); do kill -0 "$QPID" 2> /dev/null || break; sleep 0.2; done
  if kill -0 "$QPID" 2> /dev/null; then
    kill -KILL "$QPID"; wait "$QPID" 2> /dev/null || true; QPID=""
    fail "guest did not power off within 20 s of system_powerdown (QEMU killed)"
  fi
  wait "$QPID" 2> /dev/null || true; QPID=""
  echo "boot-test-guest: powered off $(elapsed "$t")s after system_powerdown"
}

g() { "${SSH[@]}" -p "$PORT" 127.0.0.1 "$@"; }

boot "boot 1"
# ------------------------------------------------------------------ checks
[ "$(g id -un)" = "$USERNAME" ] || fail "user is $(g id -un)"
[ "$(g id -u)" = "$UIDNUM" ] || fail "uid is $(g id -u), want $UIDNUM"
[ "$(g 'echo $HOME')" = "$HOMEDIR" ] || fail "home is $(g 'echo $HOME')"
[ "$(g 'echo $SHELL')" = /bin/bash ] || fail "shell is $(g 'echo $SHELL')"
[ "$(g hostname)" = lima-boot-test ] || fail "hostname is $(g hostname)"
[ "$(g sudo -n id -u)" = 0 ] || fail "sudo -n does not work"
[ "$(g sudo -n cat /mnt/lima-cidata/param.env)" = PARAM_BOOT_TEST=1 ] || fail "cidata not readable at /mnt/lima-cidata"
g test -c /dev/virtio-ports/io.lima-vm.guest_agent.0 || fail "/dev/virtio-ports/io.lima-vm.guest_agent.0 missing"
size=$(g df -k /mnt/data | awk 'NR == 2 { print $2 }')
[ "${size:-0}" -gt 900000 ] || fail "data disk not grown to 1 GiB (df: ${size:-?} KiB)"
g '/sbin/ip -4 addr show eth0' | grep -q 'inet 192.168.5.15/24' || fail "eth0 is not 192.168.5.15/24"
if [ "$BOOTSH" = 1 ]; then
  [ "$(g cat /run/boot-test-essential)" = "$IID" ] || fail "boot.essential.Linux script did not run"
else
  [ "$(g cat /run/lima-ssh-ready)" = "$IID" ] || fail "/run/lima-ssh-ready missing"
fi
# Lima's requirement wrapper (bash -c with param.env exported through sudo), script on stdin
req='param_env="$(sudo cat /mnt/lima-cidata/param.env)"; while read -r line; do [ -n "$line" ] && export "$line"; done<<EOF
${param_env}
EOF
/bin/bash'
out=$(printf '#!/bin/bash\necho "$PARAM_BOOT_TEST"\n' | "${SSH[@]}" -p "$PORT" 127.0.0.1 -- /bin/bash -c "$(printf '%q' "$req")") || true
[ "$out" = 1 ] || fail "Lima-style requirement script failed (got '$out')"
# scp (OpenSSH 9 scp uses SFTP -> sftp-server); the file must survive a restart (--restart)
echo hello > "$RUN/hello"
scp -q -F /dev/null -i "$RUN/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -o BatchMode=yes -P "$PORT" "$RUN/hello" "$USERNAME@127.0.0.1:persist.txt" || fail "scp failed"
[ "$(g cat persist.txt)" = hello ] || fail "scp'd file not found"
HOSTKEY1=$(g sudo -n sha256sum /etc/dropbear/dropbear_ed25519_host_key)
[ -n "$HOSTKEY1" ] || fail "cannot read the ssh host key"
t=$(now); g true; echo "boot-test-guest: one more ssh command: $(elapsed "$t")s"
poweroff

if [ "$RESTART" = 1 ]; then
  IID=iid-$(( $(date +%s) + 1 ))
  sed -i "s/^instance-id: .*/instance-id: $IID/" "$RUN/seed/meta-data"
  sed -i "s/^LIMA_CIDATA_IID=.*/LIMA_CIDATA_IID=$IID/" "$RUN/seed/lima.env"
  rm -f "$RUN/cidata.iso"
  (cd "$RUN/seed" && xorriso -as mkisofs -quiet -output "$RUN/cidata.iso" -volid cidata -joliet -rock . 2>"$RUN/xorriso.log") || fail "xorriso failed"
  boot "boot 2"
  [ "$(g cat persist.txt)" = hello ] || fail "home directory did not persist across the restart"
  [ "$(g sudo -n sha256sum /etc/dropbear/dropbear_ed25519_host_key)" = "$HOSTKEY1" ] ||
    fail "ssh host key changed across the restart"
  poweroff
fi
echo "boot-test-guest: PASS"
