#!/usr/bin/env bash
# Builds calima's "real guest": a Debian 12 (bookworm) cloud image made from Debian's archive, the
# local stand-in for debian-12-genericcloud-amd64.qcow2 (this machine cannot reach cloud.debian.org).
# calima boots it exactly as it boots the downloaded image: UEFI firmware (OVMF) -> GRUB on the EFI
# system partition -> Debian's cloud kernel -> systemd -> real cloud-init (NoCloud, from cidata).
#
# Disk layout (GPT, like Debian's image): p1 EFI system partition (FAT, \EFI\BOOT\BOOTX64.EFI =
# a standalone GRUB with its configuration built in), p2 ext4 root labelled "rootfs" (/boot inside).
# The image holds the package set of Debian's genericcloud image (systemd, cloud-init, netplan with
# systemd-networkd, openssh-server, sudo, linux-image-cloud-amd64, growpart) and the packages Lima's
# boot scripts would otherwise fetch with apt (sshfs, fuse3, iptables, ...).
#
# Output, in ${CALIMA_REAL_GUEST_DIR:-$HOME/.cache/calima/real-guest}:
#   debian-12-genericcloud-amd64.qcow2   compressed qcow2, 3 GiB virtual
#   VERSION                              kernel and package versions, build time
#   debs/                                the .deb cache kept between builds
# Rebuilt only when this script changes (or --force). Built without loop devices or mounts:
# mmdebstrap, mke2fs -d, mkfs.vfat + mtools, sfdisk and dd into one raw file, qemu-img convert.
# Host tools (scripts/setup.sh): mmdebstrap, e2fsprogs, dosfstools, mtools, fdisk,
# grub-efi-amd64-bin, qemu-utils. Runs as root (mmdebstrap's root mode; mke2fs -d records owners):
# a normal user's run goes through sudo, and the output is handed back to that user.
# Usage: scripts/build-real-guest.sh [--force]
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
OUT=${CALIMA_REAL_GUEST_DIR:-$HOME/.cache/calima/real-guest}
IMAGE=$OUT/debian-12-genericcloud-amd64.qcow2
FORCE=0
case "${1:-}" in
  --force|-f) FORCE=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SCRIPT"; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

DISK_MIB=3072        # virtual size; calima grows it to disk: (100GiB) and cloud-init grows p2
ESP_MIB=64
ROOT_PARTUUID=6c1c5a50-9e8b-4a8e-9d2a-ca1140000002
MIRROR=${CALIMA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${CALIMA_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

PACKAGES=(
  # the genericcloud set
  systemd-sysv systemd-resolved systemd-timesyncd udev dbus libpam-systemd
  linux-image-cloud-amd64 initramfs-tools zstd
  cloud-init cloud-guest-utils netplan.io
  openssh-server sudo ca-certificates netbase iproute2 less procps
  curl gnupg apt-utils bash-completion
  # what calima's boot scripts use (no apt-get at boot): reverse-sshfs, 9p/virtiofs, rootless tools
  sshfs fuse3 iptables uidmap dbus-user-session
)

stamp=$(sha256sum "$SCRIPT" | cut -d' ' -f1)
up_to_date() {
  [ "$FORCE" = 0 ] && [ -s "$IMAGE" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]
}
if up_to_date; then
  echo "build-real-guest: up to date: $IMAGE"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "build-real-guest: must run as root (mmdebstrap root mode)" >&2; exit 1; }
  exec sudo CALIMA_REAL_GUEST_DIR="$OUT" CALIMA_DEBIAN_MIRROR="$MIRROR" \
    CALIMA_DEBIAN_SECURITY="$SECURITY" "$SCRIPT" "$@"
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if up_to_date; then # built by a concurrent run meanwhile
  echo "build-real-guest: up to date: $IMAGE"
  exit 0
fi

for tool in mmdebstrap mke2fs mkfs.vfat mmd mcopy sfdisk grub-mkstandalone qemu-img; do
  command -v "$tool" >/dev/null || { echo "build-real-guest: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
[ -d /usr/lib/grub/x86_64-efi ] || { echo "build-real-guest: /usr/lib/grub/x86_64-efi missing (grub-efi-amd64-bin)" >&2; exit 1; }

t0=$(date +%s)
DEBS=$OUT/debs
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
mkdir -p "$DEBS"

# What runs inside the new root (chroot) once every package is installed.
cat >"$WORK/customize.sh" <<'EOF'
set -eu
# root by label, the ESP where Debian mounts it
cat >/etc/fstab <<'FSTAB'
LABEL=rootfs / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1
LABEL=ESP /boot/efi vfat umask=0077,nofail 0 1
FSTAB
mkdir -p /boot/efi
# cloud-init: the NoCloud seed on the cidata disc is the only datasource this image ever sees; no
# RSA host key (minutes of TCG); no locale generation (locales are not installed)
cat >/etc/cloud/cloud.cfg.d/90-calima-real-guest.cfg <<'CFG'
datasource_list: [ NoCloud, None ]
ssh_genkeytypes: [ ed25519, ecdsa ]
locale: false
CFG
systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer man-db.timer >/dev/null 2>&1 || true
ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
echo debian >/etc/hostname
apt-get clean
# lists/partial and lists/lock belong to apt: only the downloaded indexes go
find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete
rm -rf /var/log/*.log /tmp/*
EOF

echo "build-real-guest: mmdebstrap bookworm (${#PACKAGES[@]} packages + dependencies)"
include=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --mode=root --variant=minbase --include="$include" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*' \
  --skip=download/empty --skip=essential/unlink --skip=cleanup/apt \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives/"' \
  --setup-hook="sync-in '$DEBS' /var/cache/apt/archives/" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/calima.conf" && printf "virtio_pci\nvirtio_blk\nvirtio_scsi\nvirtio_net\nvirtio_console\next4\ncrc32c_generic\nsd_mod\nsr_mod\n" >>"$1/etc/initramfs-tools/modules"' \
  --customize-hook="sync-out /var/cache/apt/archives '$DEBS'" \
  --customize-hook="cp '$WORK/customize.sh' \"\$1/tmp/customize.sh\" && chroot \"\$1\" sh /tmp/customize.sh" \
  bookworm "$ROOTFS" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main"
rm -f "$DEBS"/lock "$DEBS"/partial 2>/dev/null || true

kver=$(basename "$(ls -d "$ROOTFS"/lib/modules/* | sort -V | tail -1)")
[ -e "$ROOTFS/boot/vmlinuz-$kver" ] && [ -e "$ROOTFS/boot/initrd.img-$kver" ] \
  || { echo "build-real-guest: kernel $kver or its initramfs missing" >&2; exit 1; }
# Debian's kernel postinst keeps /vmlinuz and /initrd.img pointing at the newest kernel; GRUB boots
# those, so a kernel upgraded inside the guest is used on the next boot.
ln -sfn "boot/vmlinuz-$kver" "$ROOTFS/vmlinuz"
ln -sfn "boot/initrd.img-$kver" "$ROOTFS/initrd.img"

# GRUB: one EFI binary with its configuration inside; it finds the root by its label.
cat >"$WORK/grub.cfg" <<'EOF'
set timeout=0
search --no-floppy --label rootfs --set=root
linux /vmlinuz root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8
initrd /initrd.img
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$WORK/BOOTX64.EFI" \
  --modules="part_gpt ext2 search_label linux normal configfile" \
  --locales= --fonts= --themes= "boot/grub/grub.cfg=$WORK/grub.cfg"

echo "build-real-guest: disk image"
mkfs.vfat -n ESP -C "$WORK/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$WORK/esp.img" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

root_start_mib=$((1 + ESP_MIB))
root_mib=$((DISK_MIB - root_start_mib - 1))      # 1 MiB left for the backup GPT
mke2fs -q -t ext4 -L rootfs -E root_owner=0:0 -d "$ROOTFS" "$WORK/root.img" "${root_mib}M"

truncate -s "${DISK_MIB}M" "$WORK/disk.raw"
sfdisk --quiet "$WORK/disk.raw" <<EOF
label: gpt
start=1MiB, size=${ESP_MIB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"
start=${root_start_mib}MiB, size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_PARTUUID, name="root"
EOF
dd if="$WORK/esp.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek="$root_start_mib" conv=notrunc,sparse status=none

qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$WORK/image.qcow2"
mv -f "$WORK/image.qcow2" "$IMAGE"
{
  echo "kernel: $kver"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - t0 )) s"
  chroot "$ROOTFS" dpkg-query -W -f='${Package} ${Version}\n' 2>/dev/null \
    | grep -E '^(cloud-init|systemd|openssh-server|linux-image-[0-9].*|netplan.io|sshfs) ' || true
} >"$OUT/VERSION"
echo "$stamp" >"$OUT/.stamp"
[ -z "${SUDO_UID:-}" ] || chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$OUT"
echo "build-real-guest: $IMAGE ($(du -h "$IMAGE" | cut -f1), $(( $(date +%s) - t0 )) s)"
