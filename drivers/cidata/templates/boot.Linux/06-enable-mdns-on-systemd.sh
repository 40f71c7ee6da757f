#!/bin/sh
# calima boot step: let systemd-resolved resolve and answer multicast DNS names (<host>.local).
# resolved does mDNS on a link only when both its global setting and the link's setting allow
# it. The global one is a drop-in. The per-link one cannot be set through netplan (the
# systemd.network setting it would need is not written), so it is set with resolvectl, which
# does not survive a reboot: hence on every boot. Guests without systemd-resolved are left alone.
set -eu

[ ! -f /sbin/openrc-run ] || exit 0
command -v systemctl >/dev/null 2>&1 || exit 0
command -v resolvectl >/dev/null 2>&1 || exit 0

dropin=/etc/systemd/resolved.conf.d/00-lima-enable-mdns.conf
wanted=$(printf '[Resolve]\nMulticastDNS=yes\n')
if [ "$(cat "$dropin" 2>/dev/null)" != "$wanted" ]; then
	mkdir -p "${dropin%/*}"
	printf '%s\n' "$wanted" >"$dropin"
	systemctl daemon-reload
	systemctl restart systemd-resolved.service
fi

# `resolvectl status` names each link on a line "Link <index> (<name>)".
for link in $(resolvectl status | awk '$1 == "Link" && $3 ~ /^\(.*\)$/ { print substr($3, 2, length($3) - 2) }'); do
	resolvectl mdns "$link" yes
done
