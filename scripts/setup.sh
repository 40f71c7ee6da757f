#!/usr/bin/env bash
# Installs every Debian 12 package calima needs to build, test and run.
# Idempotent: packages already present are left alone. Used by README, CI and users.
set -euo pipefail

packages=(
  # toolchain (dpkg-dev: dpkg-source unpacks the jq and oniguruma sources that
  # scripts/fetch-guest-sources.sh fetches for the guest agent's static yq)
  g++ cmake ninja-build ccache pkg-config git dpkg-dev
  # libraries (see DEVELOPERS.md / docs/architecture.md)
  libcaf-dev libyaml-cpp-dev libboost-dev libssl-dev libssh2-1-dev libfmt-dev
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev
  libisofs-dev libjq-dev
  # runtime tools (rsync: `limactl copy --backend=rsync`, as Lima)
  qemu-utils openssh-client rsync
  # the SSH master's tests run a real sshd (test/actors/sshd_fixture.hpp)
  openssh-server
  # the VM itself: QEMU for x86_64 guests and its UEFI firmware (drivers/qemu)
  qemu-system-x86 ovmf
  # test tools (cidata ISO read-back)
  xorriso
  # test guest: scripts/build-test-guest.sh (+ apt, dpkg-deb), scripts/boot-test-guest.sh (+ the
  # qemu-system-x86 and xorriso above): readelf/strings, xz, mke2fs, QMP over a unix socket
  binutils xz-utils e2fsprogs socat
  # real guest: scripts/build-real-guest.sh (Debian's cloud image rebuilt from the archive: root
  # file system, GPT disk with an EFI system partition and a standalone GRUB, no loop devices)
  mmdebstrap fdisk dosfstools mtools grub-efi-amd64-bin
  # reverse-sshfs mounts: OpenSSH's sftp-server serves the host directory (sshfs: the mount
  # manager's test mounts through it on this machine)
  openssh-sftp-server sshfs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
