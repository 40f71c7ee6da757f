#!/bin/sh
# calima boot step: with hostResolver, the host answers DNS on local ports, not on port 53 of the
# SLIRP DNS address the guest is told to use. NAT rules in our own chain LIMADNS send the
# guest's queries (UDP and TCP) to the host's ports through the SLIRP gateway. The chain is
# emptied and filled again on every run, so the ports of this start apply. Without iptables
# nothing is done; 35-setup-packages.sh runs this again once packages are installed.
set -eu

command -v iptables >/dev/null 2>&1 || exit 0

chain=LIMADNS
if ! iptables -t nat -S "$chain" >/dev/null 2>&1; then
	iptables -t nat -N "$chain"
	# First in both hooks: packets from other hosts (PREROUTING) and from the guest (OUTPUT).
	iptables -t nat -I PREROUTING 1 -j "$chain"
	iptables -t nat -I OUTPUT 1 -j "$chain"
fi
iptables -t nat -F "$chain"

for protocol in udp tcp; do
	if [ "$protocol" = udp ]; then
		port=${LIMA_CIDATA_UDP_DNS_LOCAL_PORT:-0}
	else
		port=${LIMA_CIDATA_TCP_DNS_LOCAL_PORT:-0}
	fi
	[ "$port" -ne 0 ] || continue
	iptables -t nat -A "$chain" -d "$LIMA_CIDATA_SLIRP_DNS" -p "$protocol" --dport 53 \
		-j DNAT --to-destination "${LIMA_CIDATA_SLIRP_GATEWAY}:${port}"
done
