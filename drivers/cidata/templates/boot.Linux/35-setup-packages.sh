#!/bin/sh
# calima boot step: configuration that has to wait until 30-install-packages.sh is done.
#  - reverse-sshfs: the host mounts the shares with sshfs as the user, with `-o allow_other` so
#    that root and services see them too. FUSE allows that option to users only when its
#    configuration says user_allow_other. (Changed before the fuse package is installed, the
#    file would make apt-get fail on a modified configuration file.) Then /run/lima-fuse-ready,
#    with this boot's instance id, tells the host that it can mount.
#  - hostResolver: iptables may have been installed just now, so set up the DNS rules again.
set -eu

if [ "$LIMA_CIDATA_MOUNTTYPE" = reverse-sshfs ]; then
	if [ "${LIMA_CIDATA_MOUNTS:-0}" -gt 0 ]; then
		# fuse3 packages of some distributions read fuse3.conf.
		fuse_conf=/etc/fuse.conf
		if [ -e /etc/fuse3.conf ]; then
			fuse_conf=/etc/fuse3.conf
		fi
		grep -q '^user_allow_other' "$fuse_conf" 2>/dev/null || echo user_allow_other >>"$fuse_conf"
	fi
	echo "${LIMA_CIDATA_IID}" >/run/lima-fuse-ready
fi

if [ "${LIMA_CIDATA_UDP_DNS_LOCAL_PORT:-0}" -ne 0 ] || [ "${LIMA_CIDATA_TCP_DNS_LOCAL_PORT:-0}" -ne 0 ]; then
	"${LIMA_CIDATA_MNT}/boot.Linux/09-host-dns-setup.sh"
fi
