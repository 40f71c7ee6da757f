#!/usr/bin/env bash
# Builds calima's end-to-end test guest ("Tiny" recipe of shared/guides/guest-image.md):
# Debian's kernel + a busybox/dropbear/bash/sudo initramfs whose init (guest/test-guest/rootfs)
# emulates cloud-init NoCloud well enough for Lima (cidata ISO: users, keys, hostname, boot.sh).
#
# Output, in ${CALIMA_TEST_GUEST_DIR:-$HOME/.cache/calima/test-guest}:
#   vmlinuz     Debian's bzImage
#   vmlinux     the same kernel uncompressed (ELF with a PVH entry: QEMU boots it directly, which
#               skips SeaBIOS + in-guest XZ decompression, ~2-3 s under TCG); template:test uses it
#   initrd.img  gzip newc cpio (the whole guest: the root filesystem stays in RAM)
#   disk.img    raw 8 MiB ext4 labelled calima-data: Lima's images[].location; the guest mounts it on
#               /mnt/data and keeps /home and the ssh host key there, so they persist across restarts
#   VERSION     kernel and package versions used
# Only Debian's archive is used (apt-get download into $CALIMA_TEST_GUEST_DIR/debs, no install).
# Idempotent: does nothing when all outputs exist and are newer than this script and guest/test-guest/.
# Usage: scripts/build-test-guest.sh [--force]
# Host tools: apt-get, dpkg-deb, readelf + strings (binutils), gzip, xz, mke2fs (e2fsprogs); busybox
# (cpio, depmod) comes from the downloaded busybox-static package. Works as root or as a normal user.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/../guest/test-guest
SRC=$(cd "$SRC" && pwd)
OUT=${CALIMA_TEST_GUEST_DIR:-$HOME/.cache/calima/test-guest}
FORCE=0
case "${1:-}" in
  --force|-f) FORCE=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

OUTPUTS=(vmlinuz vmlinux initrd.img disk.img)
DISK_SIZE_MIB=8

mkdir -p "$OUT"
# one build at a time (parallel test runs share the output directory)
exec 9>"$OUT/.lock"
flock 9

up_to_date() {
  local o
  for o in "${OUTPUTS[@]}"; do
    [ -s "$OUT/$o" ] || return 1
    [ -z "$(find "${BASH_SOURCE[0]}" "$SRC" -newer "$OUT/$o" -print -quit)" ] || return 1
  done
}
if [ "$FORCE" = 0 ] && up_to_date; then
  echo "build-test-guest: up to date in $OUT"
  exit 0
fi

t_start=$(date +%s.%N)
DEBS=$OUT/debs
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
X=$WORK/x          # extracted packages
R=$WORK/root       # initramfs root
mkdir -p "$DEBS" "$X" "$R"

# ---------------------------------------------------------------- 1. packages
# the kernel package linux-image-amd64 points to (else the one cached before: works offline)
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '!k && /Depends: linux-image-[0-9]/ { k = $2 } END { print k }'; }
KPKG=$(kernel_pkg)
if [ -z "$KPKG" ]; then
  cached=$(ls -1 "$DEBS"/linux-image-[0-9]*_*.deb 2>/dev/null | sort -V | tail -n1)
  if [ -n "$cached" ]; then
    KPKG=$(basename "$cached"); KPKG=${KPKG%%_*}
  elif [ "$(id -u)" = 0 ]; then
    echo "build-test-guest: no apt lists, running apt-get update"
    apt-get update -qq
    KPKG=$(kernel_pkg)
  fi
  [ -n "$KPKG" ] || { echo "build-test-guest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
fi
PKGS=("$KPKG" busybox-static dropbear-bin libtomcrypt1 libtommath1 libgmp10 zlib1g libcrypt1 libc6
      openssh-sftp-server bash libtinfo6 sudo libpam0g libpam-modules libaudit1 libcap-ng0 libselinux1
      libpcre2-8-0 libdb5.3 e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1)
missing=()
for p in "${PKGS[@]}"; do
  compgen -G "$DEBS/${p}_*.deb" > /dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-test-guest: downloading ${missing[*]}"
  # (as root, apt-get download falls back to downloading unsandboxed when _apt cannot write here)
  (cd "$DEBS" && apt-get download -q=2 "${missing[@]}" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
  for p in "${missing[@]}"; do
    compgen -G "$DEBS/${p}_*.deb" > /dev/null || { echo "build-test-guest: download of $p failed" >&2; exit 1; }
  done
fi
# drop cached .debs that are no longer wanted (an older kernel ABI, a removed package)
for f in "$DEBS"/*.deb; do
  n=$(basename "$f"); n=${n%%_*}
  case " ${PKGS[*]} " in *" $n "*) ;; *) rm -f "$f"; continue ;; esac
  [ "$f" = "$(ls -1 "$DEBS/${n}"_*.deb | sort -V | tail -n1)" ] || rm -f "$f"   # older version
done
t_dl=$(date +%s.%N)

newest_deb() { ls -1 "$DEBS/${1}"_*.deb | sort -V | tail -n1; }
for p in "${PKGS[@]}"; do
  if [ "$p" = "$KPKG" ]; then
    # only the kernel image and the module tree (the modules are pruned below)
    dpkg-deb --fsys-tarfile "$(newest_deb "$p")" | tar -x -C "$X" --wildcards './boot/vmlinuz-*' './lib/modules/*'
  else
    dpkg-deb -x "$(newest_deb "$p")" "$X"
  fi
done
KV=$(ls "$X/lib/modules" | head -n1)
BB=$X/bin/busybox
cp "$X/boot/vmlinuz-$KV" "$WORK/vmlinuz"

# ---------------------------------------------------------------- 2. initramfs root
cd "$R"
mkdir -p bin sbin usr/bin usr/sbin usr/lib usr/lib/openssh lib/x86_64-linux-gnu lib64 etc proc sys dev run tmp \
         mnt root home var/log var/run var/tmp var/lib etc/dropbear etc/sudoers.d etc/pam.d etc/profile.d usr/local/bin
chmod 1777 tmp var/tmp
rmdir var/run; ln -s ../run var/run
chmod 700 root
cp "$BB" bin/busybox
for a in $(bin/busybox --list-full); do      # e.g. sbin/acpid, usr/bin/awk
  mkdir -p "$(dirname "$a")"
  [ -e "$a" ] || [ -L "$a" ] || ln -s /bin/busybox "$a"
done
ln -sf /bin/busybox sbin/init
# dropbear + OpenSSH's sftp-server (OpenSSH 9 scp speaks SFTP)
cp "$X/usr/sbin/dropbear" usr/sbin/
cp "$X/usr/bin/dropbearkey" "$X/usr/bin/dbclient" usr/bin/
cp "$X/usr/lib/openssh/sftp-server" usr/lib/openssh/sftp-server
ln -sf openssh/sftp-server usr/lib/sftp-server     # the path dropbear runs
# resize2fs: the guest grows the data disk's ext4 to the disk size (Lima resizes the image to `disk:`)
rm -f sbin/resize2fs; cp "$X/sbin/resize2fs" sbin/resize2fs
# bash (Lima's users get /bin/bash; Lima runs requirement scripts with bash)
rm -f bin/bash; cp "$X/bin/bash" bin/bash
# sudo: setuid; PAM cut down to pam_permit/pam_deny, so only NOPASSWD rules work (Lima's default)
cp "$X/usr/bin/sudo" usr/bin/sudo; chmod 4755 usr/bin/sudo
mkdir -p usr/libexec/sudo lib/x86_64-linux-gnu/security
cp -a "$X/usr/libexec/sudo/." usr/libexec/sudo/
cp "$X/lib/x86_64-linux-gnu/security/pam_permit.so" "$X/lib/x86_64-linux-gnu/security/pam_deny.so" lib/x86_64-linux-gnu/security/
printf 'auth required pam_deny.so\naccount required pam_permit.so\npassword required pam_deny.so\nsession required pam_permit.so\n' > etc/pam.d/other
cp etc/pam.d/other etc/pam.d/sudo
cp etc/pam.d/other etc/pam.d/sudo-i
printf 'Defaults env_reset\nDefaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\nroot ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n' > etc/sudoers
chmod 0440 etc/sudoers
chmod 0750 etc/sudoers.d
# shared libraries: ELF NEEDED closure, resolved inside the extracted packages
need_libs() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
todo="usr/sbin/dropbear usr/bin/dropbearkey usr/bin/dbclient usr/lib/openssh/sftp-server bin/bash usr/bin/sudo sbin/resize2fs
      $(find usr/libexec/sudo lib/x86_64-linux-gnu/security -name '*.so*' -type f)"
seen=" "
while [ -n "$todo" ]; do
  set -- $todo; f=$1; shift; todo="$*"
  for l in $(need_libs "$f") libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    case "$seen" in *" $l "*) continue ;; esac
    seen="$seen$l "
    [ -e "usr/libexec/sudo/$l" ] && continue     # sudo's private libraries (RUNPATH)
    src=$(find "$X/lib" "$X/usr/lib" -name "$l" | head -n1)
    [ -n "$src" ] || { echo "build-test-guest: missing library $l (needed by $f): add its package" >&2; exit 1; }
    cp -L "$src" "lib/x86_64-linux-gnu/$l"
    todo="$todo lib/x86_64-linux-gnu/$l"
  done
done
cp -L "$(find "$X/lib" "$X/usr/lib" -name ld-linux-x86-64.so.2 | head -n1)" lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2

# ---------------------------------------------------------------- 3. kernel modules (+ depends= closure)
. "$SRC/rootfs/etc/calima/modules.conf"
MD=$X/lib/modules/$KV
added=" "
addmod() {
  local m f rel deps
  for m in "$@"; do
    case "$added" in *" $m "*) continue ;; esac
    added="$added$m "
    f=$(find "$MD/kernel" \( -name "$m.ko" -o -name "${m//_/-}.ko" -o -name "${m//-/_}.ko" \) | head -n1)
    [ -n "$f" ] || { echo "build-test-guest: kernel module $m not found" >&2; exit 1; }
    rel=${f#"$X"/}
    mkdir -p "$(dirname "$rel")"
    cp "$f" "$rel"
    deps=$(strings "$f" | sed -n 's/^depends=//p' | tr , ' ')
    [ -z "$deps" ] || addmod $deps
  done
}
addmod $MODULES_EARLY $MODULES_FALLBACK $MODULES_DATA $MODULES_9P
cp "$MD/modules.builtin" "$MD/modules.order" "lib/modules/$KV/"
[ ! -f "$MD/modules.builtin.modinfo" ] || cp "$MD/modules.builtin.modinfo" "lib/modules/$KV/"
bin/busybox depmod -b "$R" "$KV"

# ---------------------------------------------------------------- 4. guest files
cp -a "$SRC/rootfs/." "$R/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > etc/passwd
printf 'root:x:0:\ntty:x:5:\nsudo:x:27:\nusers:x:100:\nnogroup:x:65534:\n' > etc/group
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > etc/shadow; chmod 640 etc/shadow
printf '/bin/sh\n/bin/ash\n/bin/bash\n/usr/bin/bash\n' > etc/shells
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > etc/nsswitch.conf
printf 'PRETTY_NAME="calima test guest (Debian %s kernel, busybox)"\nNAME="calima-test-guest"\nID=calima-test-guest\nID_LIKE=debian\n' "$KV" > etc/os-release
ln -sf /bin/bash usr/bin/bash
{
  echo "kernel $KV"
  for p in "${PKGS[@]}"; do basename "$(newest_deb "$p")" .deb; done
} > "$WORK/VERSION"
cp "$WORK/VERSION" etc/calima/VERSION
[ "$(id -u)" = 0 ] || : > etc/calima/fix-ownership   # /init chowns to root at boot

# ---------------------------------------------------------------- 5. pack
find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null | gzip -6 > "$WORK/initrd.img"
cd "$WORK"

# ---------------------------------------------------------------- 6. PVH vmlinux (uncompressed ELF)
off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' vmlinuz | head -n1 | cut -d: -f1)
[ -n "$off" ] || { echo "build-test-guest: no XZ payload in vmlinuz" >&2; exit 1; }
tail -c +$((off + 1)) vmlinuz | xz -dc 2>/dev/null > vmlinux || true   # xz complains about trailing data
readelf -n vmlinux | grep -q 'Xen' || { echo "build-test-guest: vmlinux has no PVH (Xen ELF) note" >&2; exit 1; }

# ---------------------------------------------------------------- 7. disk image (raw ext4, 8 MiB)
mkdir -p "$WORK/disk/home" "$WORK/disk/etc/dropbear"
printf 'calima test guest data disk: /home and the ssh host key live here (mounted on /mnt/data).\n' > "$WORK/disk/README"
rm -f disk.img
mke2fs -q -t ext4 -L calima-data -E root_owner=0:0 -m 0 -d "$WORK/disk" disk.img "${DISK_SIZE_MIB}M" > /dev/null

# ---------------------------------------------------------------- 8. install
for o in "${OUTPUTS[@]}" VERSION; do mv -f "$WORK/$o" "$OUT/$o"; done
t_end=$(date +%s.%N)
awk -v a="$t_start" -v b="$t_dl" -v c="$t_end" -v o="$OUT" 'BEGIN { printf "build-test-guest: built in %.1f s (downloads %.1f s): %s\n", c - a, b - a, o }'
(cd "$OUT" && ls -l "${OUTPUTS[@]}")
