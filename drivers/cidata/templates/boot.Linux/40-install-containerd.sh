#!/bin/bash
# calima boot step (systemd guests, `containerd.system` or `containerd.user`): install the
# nerdctl-full archive of the cidata (containerd, nerdctl, BuildKit, stargz-snapshotter,
# rootlesskit...) under the install prefix, replacing an older installation, then set up and
# start containerd for root and/or the user. Configuration files that exist are never rewritten:
# users may have edited them.
set -eu

[ "${LIMA_CIDATA_CONTAINERD_SYSTEM:-}" = 1 ] || [ "${LIMA_CIDATA_CONTAINERD_USER:-}" = 1 ] || exit 0
command -v systemctl >/dev/null 2>&1 || exit 0

# The environment can override both (20-rootless-base.sh may set the snapshotter for the user).
namespace=${CONTAINERD_NAMESPACE:-default}
snapshotter=${CONTAINERD_SNAPSHOTTER:-overlayfs}
archive=${LIMA_CIDATA_MNT}/${LIMA_CIDATA_CONTAINERD_ARCHIVE}
prefix=$LIMA_CIDATA_GUEST_INSTALL_PREFIX
uid=$LIMA_CIDATA_UID

# Runs a command as the user, in a login shell with the user's systemd and our PATH.
as_user() {
	sudo -iu "$LIMA_CIDATA_USER" "XDG_RUNTIME_DIR=/run/user/${uid}" "PATH=${PATH}" "$@"
}

# The archive is unpacked when its nerdctl is newer than the installed one (or none is
# installed). Unpacking nerdctl alone first is the cheap way to learn its date.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
tar -C "$probe" -xaf "$archive" bin/nerdctl
if [ ! -f "${prefix}/bin/nerdctl" ] || [ "${probe}/bin/nerdctl" -nt "${prefix}/bin/nerdctl" ]; then
	if [ -f "${prefix}/bin/nerdctl" ]; then
		echo "calima: upgrading nerdctl-full: $("${prefix}/bin/nerdctl" --version || true) -> $("${probe}/bin/nerdctl" --version || true)"
		# Stop what runs from the old files; failures here must not stop the upgrade.
		systemctl disable --now containerd default-buildkit stargz-snapshotter || true
		as_user "CONTAINERD_NAMESPACE=${namespace}" containerd-rootless-setuptool.sh uninstall-buildkit-containerd || true
		as_user containerd-rootless-setuptool.sh uninstall || true
	fi
	tar -C "$prefix" -xaf "$archive"
	mkdir -p /etc/bash_completion.d
	nerdctl completion bash >/etc/bash_completion.d/nerdctl
fi

if [ "${LIMA_CIDATA_CONTAINERD_SYSTEM:-}" = 1 ]; then
	if [ ! -e /etc/containerd/config.toml ]; then
		mkdir -p /etc/containerd
		cat >/etc/containerd/config.toml <<'EOF'
# calima: containerd for root. CDI lets containers ask for devices by name; the stargz
# snapshotter (lazy image pulls) runs as a separate service.
version = 2
# Drop-ins; containerd reads this directory by itself from 2.2 on.
imports = ['/etc/containerd/conf.d/*.toml']

[plugins."io.containerd.grpc.v1.cri"]
enable_cdi = true

[proxy_plugins.stargz]
type = "snapshot"
address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"
EOF
	fi
	if [ ! -e /etc/buildkit/buildkitd.toml ]; then
		mkdir -p /etc/buildkit
		cat >/etc/buildkit/buildkitd.toml <<EOF
# calima: BuildKit builds through containerd, so images land where nerdctl sees them.
[worker.oci]
enabled = false

[worker.containerd]
enabled = true
namespace = "${namespace}"
snapshotter = "${snapshotter}"
EOF
	fi
	systemctl enable --now containerd buildkit stargz-snapshotter
fi

[ "${LIMA_CIDATA_CONTAINERD_USER:-}" = 1 ] || exit 0

config=${LIMA_CIDATA_HOME}/.config/containerd/config.toml
if [ ! -e "$config" ]; then
	mkdir -p "${config%/*}"
	cat >"$config" <<EOF
# calima: the user's (rootless) containerd. The snapshotters fuse-overlayfs and stargz run as
# user services beside it.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
enable_cdi = true

[proxy_plugins.fuse-overlayfs]
type = "snapshot"
address = "/run/user/${uid}/containerd-fuse-overlayfs.sock"

[proxy_plugins.stargz]
type = "snapshot"
address = "/run/user/${uid}/containerd-stargz-grpc/containerd-stargz-grpc.sock"
EOF
	chown -R "$LIMA_CIDATA_USER" "${LIMA_CIDATA_HOME}/.config"
fi

# Ubuntu 23.10 and later can keep unprivileged programs from creating user namespaces through
# AppArmor (kernel.apparmor_restrict_unprivileged_userns); rootlesskit needs them.
profile=/etc/apparmor.d/usr.local.bin.rootlesskit
if [ ! -e "$profile" ] && [ -e /etc/apparmor.d/abi/4.0 ] && [ -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]; then
	cat >"$profile" <<'EOF'
# calima: rootlesskit may create user namespaces.
abi <abi/4.0>,
include <tunables/global>

/usr/local/bin/rootlesskit flags=(unconfined) {
  userns,

  # Local additions go in local/usr.local.bin.rootlesskit.
  include if exists <local/usr.local.bin.rootlesskit>
}
EOF
	systemctl restart apparmor.service
fi

# The user's units are installed once; their presence marks a done installation.
[ ! -e "${LIMA_CIDATA_HOME}/.config/systemd/user/containerd.service" ] || exit 0

# containerd-rootless-setuptool.sh talks to the user's systemd: wait for it (linger starts it).
until [ -e "/run/user/${uid}/systemd/private" ]; do
	sleep 3
done
selinux=false
if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
	selinux=true
	echo "calima: SELinux is set to permissive while the rootless containerd units are installed"
	setenforce 0
fi
# Where dbus is a user service that may be started by hand, rootless containerd needs it running.
if [ "$(sudo -iu "$LIMA_CIDATA_USER" sh -ec 'systemctl --user show --property=RefuseManualStart --value dbus')" != yes ]; then
	sudo -iu "$LIMA_CIDATA_USER" "XDG_RUNTIME_DIR=/run/user/${uid}" systemctl --user enable --now dbus
fi
as_user containerd-rootless-setuptool.sh install
as_user "CONTAINERD_NAMESPACE=${namespace}" "CONTAINERD_SNAPSHOTTER=${snapshotter}" \
	containerd-rootless-setuptool.sh install-buildkit-containerd
# The user's login shell says which snapshotter to use (20-rootless-base.sh sets fuse-overlayfs
# on kernels before 5.13).
# shellcheck disable=SC2016 # expanded by the user's shell
if [ "$(sudo -iu "$LIMA_CIDATA_USER" sh -ec 'echo "${CONTAINERD_SNAPSHOTTER:-}"')" = fuse-overlayfs ]; then
	as_user containerd-rootless-setuptool.sh install-fuse-overlayfs
fi
if compare_version.sh "$(uname -r)" -ge 5.13; then
	as_user containerd-rootless-setuptool.sh install-stargz
else
	echo "calima: the kernel is older than 5.13; rootless stargz-snapshotter is not installed" >&2
fi
if [ "$selinux" = true ]; then
	echo "calima: SELinux is enforcing again"
	setenforce 1
fi
