#!/bin/sh
# calima boot step: programs in the guest choose their colours from COLORTERM, which ssh clients
# send but sshd drops unless AcceptEnv names it. Add it to the usual "AcceptEnv LANG LC_*" line
# of /etc/ssh/sshd_config and reload sshd. Distributions that configure sshd only in
# sshd_config.d (openSUSE Tumbleweed) or have no such line are left as they are.
set -eu

config=/etc/ssh/sshd_config
[ -f "$config" ] || exit 0
! grep -q COLORTERM "$config" || exit 0
grep -q '^AcceptEnv LANG LC_\*$' "$config" || exit 0

sed -i 's/^AcceptEnv LANG LC_\*$/AcceptEnv COLORTERM LANG LC_*/' "$config"
if [ -f /sbin/openrc-run ]; then
	rc-service --ifstarted sshd reload
elif command -v systemctl >/dev/null 2>&1; then
	# Debian and Ubuntu call the service ssh, others sshd.
	for service in ssh sshd; do
		if systemctl -q is-active "$service"; then
			systemctl reload "$service"
			break
		fi
	done
fi
