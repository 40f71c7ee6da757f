#!/bin/sh
# calima boot step: install and start lima-guestagent (runtime spec §8.1), the guest's side of
# port discovery and port forwarding. The copy on the cidata is installed as
# <prefix>/bin/lima-guestagent when it differs from the installed one. With OpenRC it runs as
# the lima-guestagent service written here; elsewhere `lima-guestagent install-systemd` writes
# and (re)starts lima-guestagent.service (calima's agent starts itself when systemd is absent).
# With reverse-sshfs, the mount points are made first and given to the user, because the host's
# sshfs runs as the user and cannot create them.
set -eu

if [ "${LIMA_CIDATA_MOUNTTYPE}" = reverse-sshfs ]; then
	group=$(id -g "$LIMA_CIDATA_USER")
	i=0
	while [ "$i" -lt "${LIMA_CIDATA_MOUNTS:-0}" ]; do
		mount_point=$(eval "printf '%s\n' \"\${LIMA_CIDATA_MOUNTS_${i}_MOUNTPOINT}\"")
		mkdir -p "$mount_point"
		chown "${LIMA_CIDATA_UID}:${group}" "$mount_point"
		i=$((i + 1))
	done
fi

# calima leaves the agent off the cidata when it has none for the guest's architecture.
shipped=${LIMA_CIDATA_MNT}/lima-guestagent
if [ ! -e "$shipped" ]; then
	echo "calima: no lima-guestagent on the cidata; not installing it"
	exit 0
fi

installed=${LIMA_CIDATA_GUEST_INSTALL_PREFIX}/bin/lima-guestagent
updated=false
if [ -f "$installed" ] && [ "$(sha256sum <"$shipped")" = "$(sha256sum <"$installed")" ]; then
	echo "calima: $installed is the cidata's lima-guestagent already"
else
	mkdir -p "${installed%/*}"
	# install(1) writes a new file, so a running agent's binary is not overwritten under it.
	install -m 755 "$shipped" "$installed"
	updated=true
fi

if [ ! -f /sbin/openrc-run ]; then
	# A user unit of earlier Lima versions would start a second agent.
	rm -f "${LIMA_CIDATA_HOME}/.config/systemd/user/lima-guestagent.service"
	if [ "${LIMA_CIDATA_VSOCK_PORT}" != 0 ]; then
		set -- --vsock-port "$LIMA_CIDATA_VSOCK_PORT"
	elif [ -n "${LIMA_CIDATA_VIRTIO_PORT}" ]; then
		set -- --virtio-port "$LIMA_CIDATA_VIRTIO_PORT"
	else
		set --
	fi
	exec "$installed" install-systemd --debug="$LIMA_CIDATA_DEBUG" --guestagent-updated="$updated" "$@"
fi

# OpenRC: the service reads lima.env from /etc/conf.d/lima-guestagent (OpenRC sources it before
# the service script), with each value single-quoted for sh.
conf_d() {
	sed -e "s/'/'\\\\''/g" -e "s/=/='/" -e "s/\$/'/" "${LIMA_CIDATA_MNT}/lima.env"
}
init_d() {
	cat <<'EOF'
#!/sbin/openrc-run
# calima's guest agent, kept running by supervise-daemon; its settings come from
# /etc/conf.d/lima-guestagent (the instance's lima.env).
name="lima-guestagent"
description="calima guest agent: guest ports and port forwarding for the host"
supervisor=supervise-daemon
command="${LIMA_CIDATA_GUEST_INSTALL_PREFIX}/bin/lima-guestagent"
command_args="daemon --debug=${LIMA_CIDATA_DEBUG} --vsock-port \"${LIMA_CIDATA_VSOCK_PORT}\" --virtio-port \"${LIMA_CIDATA_VIRTIO_PORT}\""
pidfile="/run/lima-guestagent.pid"
supervise_daemon_args="--stdout /var/log/lima-guestagent.log --stderr /var/log/lima-guestagent.log"
EOF
}

if [ "$updated" = false ] &&
	[ "$(conf_d)" = "$(cat /etc/conf.d/lima-guestagent 2>/dev/null)" ] &&
	[ "$(init_d)" = "$(cat /etc/init.d/lima-guestagent 2>/dev/null)" ]; then
	echo "calima: the lima-guestagent service is up to date"
	exit 0
fi
conf_d >/etc/conf.d/lima-guestagent
init_d >/etc/init.d/lima-guestagent
chmod 755 /etc/init.d/lima-guestagent
rc-update add lima-guestagent default
# Restart a running agent (it may be the old binary); start a stopped one.
rc-service --ifstarted lima-guestagent restart
rc-service --ifstopped lima-guestagent start
