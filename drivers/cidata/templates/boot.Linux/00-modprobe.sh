#!/bin/sh
# calima boot step: load the kernel modules that containers, VPNs and FUSE mounts need, before
# anything can upgrade the kernel package underneath us (some distributions delete the running
# kernel's module tree on upgrade). A module that is built in, or missing, is not an error.
set -eu

modules="fuse tun tap bridge veth overlay nf_tables x_tables
ip_tables ip6_tables iptable_nat ip6table_nat iptable_filter ip6table_filter
xt_MASQUERADE xt_addrtype xt_comment xt_conntrack xt_mark xt_multiport xt_nat xt_tcpudp"

for module in $modules; do
	if modprobe "$module" 2>/dev/null; then
		echo "calima: loaded kernel module $module"
	else
		echo "calima: kernel module $module not loaded (built in, or not shipped by this kernel)" >&2
	fi
done
