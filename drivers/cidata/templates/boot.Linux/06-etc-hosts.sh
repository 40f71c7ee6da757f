#!/bin/sh
# calima boot step: host.lima.internal names the host (the SLIRP gateway). The host-side DNS
# (hostResolver) answers that name itself, but it is off for some instances, so /etc/hosts
# carries it too: one line, rewritten on every boot since the gateway may change.
set -eu

others=$(grep -v 'host\.lima\.internal' /etc/hosts || true)
# Rewrite the file in place rather than replace it: /etc/hosts may be a bind mount.
{
	[ -z "$others" ] || printf '%s\n' "$others"
	printf '%s\thost.lima.internal\n' "$LIMA_CIDATA_SLIRP_GATEWAY"
} >/etc/hosts
