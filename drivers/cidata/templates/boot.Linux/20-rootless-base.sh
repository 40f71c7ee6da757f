#!/bin/sh
# calima boot step (systemd guests): what rootless containers, and a user session that outlives
# ssh logins, need from the system. Each part leaves alone what an earlier boot did.
set -eu

command -v systemctl >/dev/null 2>&1 || exit 0

# A mount point inside the home is created by root before cloud-init creates the user, and then
# the home itself is root's. Give the home back to the user (this file system only: mounted
# shares are not ours to change, and failing on them does not matter).
if [ -O "$LIMA_CIDATA_HOME" ]; then
	find "$LIMA_CIDATA_HOME" -xdev -exec chown "$LIMA_CIDATA_USER" {} + || true
fi

# Shell start-up files: the sbin directories hold iptables and mount.fuse3, which rootless
# tools call. Kernels before 5.13 cannot use overlayfs without root, so containerd uses the
# fuse-overlayfs snapshotter there (40-install-containerd.sh reads CONTAINERD_SNAPSHOTTER
# from a login shell). The "# Lima BEGIN" / "# Lima END" lines mark our block.
old_kernel=false
if compare_version.sh "$(uname -r)" -lt 5.13; then
	old_kernel=true
fi
for name in .profile .bashrc .zshrc; do
	file=${LIMA_CIDATA_HOME}/${name}
	! grep -q "# Lima BEGIN" "$file" 2>/dev/null || continue
	{
		echo "# Lima BEGIN"
		echo "# calima: the sbin directories, for iptables and mount.fuse3"
		# shellcheck disable=SC2016 # expanded when the shell reads the file
		echo 'PATH="$PATH:/usr/sbin:/sbin"'
		echo "export PATH"
		if [ "$old_kernel" = true ]; then
			echo "# calima: rootless overlayfs needs kernel 5.13; use fuse-overlayfs before that"
			echo 'CONTAINERD_SNAPSHOTTER="fuse-overlayfs"'
			echo "export CONTAINERD_SNAPSHOTTER"
		fi
		echo "# Lima END"
	} >>"$file"
	chown "$LIMA_CIDATA_USER" "$file"
done

# Let user services manage their own cgroups (cgroup v2 only), as rootless engines require.
delegate=/etc/systemd/system/user@.service.d/lima.conf
if [ ! -e "$delegate" ]; then
	mkdir -p "${delegate%/*}"
	printf '[Service]\nDelegate=yes\n' >"$delegate"
fi
systemctl daemon-reload

# Kernel settings: user namespaces for everyone (on kernels that can turn them off), ping
# without privileges, and ports below 1024 for the user (port forwards of e.g. 80 work as is).
sysctl_conf=/etc/sysctl.d/99-lima.conf
if [ ! -e "$sysctl_conf" ]; then
	mkdir -p "${sysctl_conf%/*}"
	{
		if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then
			echo "kernel.unprivileged_userns_clone=1"
		fi
		echo "net.ipv4.ping_group_range = 0 2147483647"
		echo "net.ipv4.ip_unprivileged_port_start=0"
	} >"$sysctl_conf"
	sysctl --system
fi

# Subordinate ids for the user's namespaces: 1073741824 (2^30) of them, starting at 524288, the
# lowest start systemd-homed accepts, which leaves room after the range for more users. A uid at
# or above 524288 would fall inside the range, so then the range starts right after it.
first=524288
if [ "$LIMA_CIDATA_UID" -ge "$first" ]; then
	first=$((LIMA_CIDATA_UID + 1))
fi
for file in /etc/subuid /etc/subgid; do
	grep -qw "$LIMA_CIDATA_USER" "$file" 2>/dev/null || echo "${LIMA_CIDATA_USER}:${first}:1073741824" >>"$file"
done

# Keep the user's systemd instance running without a login, for user services and containers.
systemctl start systemd-logind.service
loginctl enable-linger "$LIMA_CIDATA_USER"
