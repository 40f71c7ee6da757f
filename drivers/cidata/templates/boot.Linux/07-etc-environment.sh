#!/bin/sh
# calima boot step: put the instance's `env:` (and the proxy variables), the cidata's
# etc_environment, into /etc/environment, replacing what an earlier boot put there between the
# #LIMA-START and #LIMA-END lines. Then tell the host, with this boot's instance id in
# /run/lima-ssh-ready, that ssh sessions started from now on get the final environment: the
# host waits for that before it opens its long-lived ssh connection.
set -eu

before=$(cat /etc/environment 2>/dev/null || true)
if [ -f /etc/environment ]; then
	sed -i '/#LIMA-START/,/#LIMA-END/d' /etc/environment
fi
cat "${LIMA_CIDATA_MNT}/etc_environment" >>/etc/environment

# A session opened before this change (a readiness probe, say) would keep the old environment
# and keep the user's systemd instance alive with it: end the user's sessions.
if [ "$before" != "$(cat /etc/environment)" ] && command -v loginctl >/dev/null 2>&1; then
	loginctl terminate-user "$LIMA_CIDATA_USER" || true
fi

echo "${LIMA_CIDATA_IID}" >/run/lima-ssh-ready
