#!/bin/sh
# calima boot step: install the packages the instance relies on and the image may lack, with
# whichever package manager the guest has:
#  - sshfs, which the host runs in the guest for reverse-sshfs mounts;
#  - iptables, for containerd's networks and for the DNS rules of 09-host-dns-setup.sh;
#  - newuidmap (uidmap or shadow-utils), fuse3 and a D-Bus user session, for rootless containerd;
#  - rsync, for `limactl copy`;
# and, on RHEL-like systems, tar, plus the extra repositories (EPEL and the like) that provide
# sshfs. Before any of that, the `mode: dependency` provision scripts run, and with
# `skipDefaultDependencyResolution` they are all that runs.
set -eu

have() {
	command -v "$1" >/dev/null 2>&1
}

if [ -d "${LIMA_CIDATA_MNT}/provision.dependency" ]; then
	echo "calima: running the dependency provision scripts before installing packages"
	failed=0
	for f in "${LIMA_CIDATA_MNT}"/provision.dependency/*; do
		[ -e "$f" ] || continue
		"$f" || failed=1
	done
	[ "$failed" = 0 ] || exit 1
fi
if [ "${LIMA_CIDATA_SKIP_DEFAULT_DEPENDENCY_RESOLUTION:-}" = 1 ]; then
	echo "calima: skipDefaultDependencyResolution is set; no other packages are installed"
	exit 0
fi

need_sshfs=false
if [ "$LIMA_CIDATA_MOUNTTYPE" = reverse-sshfs ] && [ "${LIMA_CIDATA_MOUNTS:-0}" -gt 0 ] && ! have sshfs; then
	need_sshfs=true
fi
want_iptables=false
if [ "${LIMA_CIDATA_CONTAINERD_SYSTEM:-}" = 1 ] || [ "${LIMA_CIDATA_CONTAINERD_USER:-}" = 1 ] ||
	[ "${LIMA_CIDATA_UDP_DNS_LOCAL_PORT:-0}" -ne 0 ] || [ "${LIMA_CIDATA_TCP_DNS_LOCAL_PORT:-0}" -ne 0 ]; then
	want_iptables=true
fi
rootless=false
if [ "${LIMA_CIDATA_CONTAINERD_USER:-}" = 1 ]; then
	rootless=true
fi
remount_virtiofs=false

pkgs=""
add() {
	pkgs="$pkgs $*"
}
# iptables is wanted and not at the place Debian, Fedora and openSUSE install it.
iptables_missing() {
	[ "$want_iptables" = true ] && [ ! -e /usr/sbin/iptables ]
}

# Only a real apt-get (an ELF binary) counts: openSUSE has an apt-get script that imitates a
# part of it.
is_elf() {
	[ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]
}

install_with_apt() {
	[ "$need_sshfs" = false ] || add sshfs
	! iptables_missing || add iptables
	if [ "$rootless" = true ] && ! have newuidmap; then
		add uidmap fuse3 dbus-user-session
	fi
	have rsync || add rsync
	[ -n "$pkgs" ] || return 0
	DEBIAN_FRONTEND=noninteractive
	export DEBIAN_FRONTEND
	apt-get update
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y --no-upgrade --no-install-recommends -q $pkgs
}

install_with_dnf() {
	extra="" # packages that come from an extra repository
	have tar || add tar
	if [ "$need_sshfs" = true ]; then
		extra="$extra fuse-sshfs" # not in RHEL itself
	fi
	! iptables_missing || add iptables
	if [ "$rootless" = true ]; then
		have newuidmap || add shadow-utils
		have mount.fuse3 || add fuse3
	fi
	have rsync || add rsync

	if [ -n "$pkgs" ] || [ -n "$extra" ]; then
		release=$(cat /etc/system-release 2>/dev/null || true)
		flags="-y --setopt=install_weak_deps=False"
		extra_flags=""
		case "$release" in
		*"Oracle Linux Server release 8"*)
			# Naming the repositories saves loading the metadata of all the others (slow there).
			flags="$flags --repo ol8_baseos_latest --repo ol8_codeready_builder"
			;;
		*"release 8"*)
			flags="$flags --enablerepo powertools"
			;;
		*"Oracle Linux Server release 9"*)
			# shellcheck disable=SC2086 # one word per flag
			dnf install $flags oracle-epel-release-el9
			dnf config-manager --disable ol9_developer_EPEL >/dev/null 2>&1
			extra_flags="$extra_flags --enablerepo ol9_developer_EPEL"
			;;
		*"Oracle Linux Server release 10"*)
			version=${release##*release }
			version=${version%% *}
			major=${version%%.*}
			minor=${version#*.}
			minor=${minor%%.*}
			epel="ol${major}_u${minor}_developer_EPEL"
			# shellcheck disable=SC2086 # one word per flag
			dnf install $flags "oracle-epel-release-el${major}"
			dnf config-manager --disable "$epel" >/dev/null 2>&1 || true
			extra_flags="$extra_flags --enablerepo $epel"
			;;
		*"release 9"* | *"release 10"*)
			# shellcheck disable=SC2086 # one word per flag
			dnf install $flags epel-release
			# EPEL (and the OpenH264 repository it adds) is used for the extra packages only.
			dnf config-manager --disable 'epel*' >/dev/null 2>&1
			extra_flags="$extra_flags --enablerepo epel"
			;;
		esac
		case "$release" in
		*"Oracle Linux Server"*)
			if [ "$LIMA_CIDATA_MOUNTTYPE" = virtiofs ]; then
				# virtiofs is a module of the UEK kernel, in a package of its own.
				for repository in $(dnf -q repolist | awk 'NR > 1 && /UEK/ { print $1 }'); do
					extra_flags="$extra_flags --enablerepo $repository"
				done
				extra="$extra kernel-uek-modules-$(uname -r)"
				remount_virtiofs=true
			fi
			;;
		esac
		if [ -n "$pkgs" ]; then
			# shellcheck disable=SC2086 # one word per flag and package
			dnf install $flags $pkgs
		fi
		if [ -n "$extra" ]; then
			case "$release" in
			*"Amazon Linux"*2023*)
				if [ "$need_sshfs" = true ]; then
					# Amazon Linux 2023 gets fuse-sshfs from the repository spal-release adds.
					# shellcheck disable=SC2086 # one word per flag
					dnf install $flags spal-release
				fi
				;;
			esac
			# shellcheck disable=SC2086 # one word per flag and package
			dnf install $flags $extra_flags $extra
		fi
	fi
	if [ "$rootless" = true ] && [ ! -e /usr/bin/fusermount ] && [ ! -L /usr/bin/fusermount ]; then
		# stargz-snapshotter runs `fusermount`, and only fusermount3 is installed.
		ln -s fusermount3 /usr/bin/fusermount
	fi
}

install_with_yum() {
	echo "calima: RHEL 7 and its relatives are no longer supported; installing packages anyway" >&2
	flags="-y"
	rpm -q epel-release >/dev/null 2>&1 || yum install $flags epel-release
	have tar || add tar
	[ "$need_sshfs" = false ] || add fuse-sshfs
	! iptables_missing || add iptables
	if [ "$rootless" = true ]; then
		have newuidmap || add shadow-utils
		have mount.fuse3 || add fuse3
	fi
	have rsync || add rsync
	[ -n "$pkgs" ] || return 0
	# shellcheck disable=SC2086 # one word per package
	yum install $flags $pkgs
	yum-config-manager --disable epel >/dev/null 2>&1
}

install_with_pacman() {
	# Arch Linux images have the rest.
	[ "$need_sshfs" = false ] || add sshfs
	have rsync || add rsync
	[ -n "$pkgs" ] || return 0
	# shellcheck disable=SC2086 # one word per package
	pacman -Sy --noconfirm $pkgs
}

install_with_zypper() {
	[ "$need_sshfs" = false ] || add sshfs
	! iptables_missing || add iptables
	if [ "$rootless" = true ] && ! have mount.fuse3; then
		add fuse3
	fi
	have rsync || add rsync
	[ -n "$pkgs" ] || return 0
	# shellcheck disable=SC2086 # one word per package
	zypper --non-interactive install -y --no-recommends $pkgs
}

install_with_apk() {
	[ "$need_sshfs" = false ] || add sshfs
	# Alpine has iptables in /sbin: ask the PATH.
	if [ "$want_iptables" = true ] && ! have iptables; then
		add iptables
	fi
	have rsync || add rsync
	[ -n "$pkgs" ] || return 0
	apk update
	# shellcheck disable=SC2086 # one word per package
	apk add $pkgs
}

if have apt-get && is_elf "$(command -v apt-get)"; then
	install_with_apt
elif have dnf; then
	install_with_dnf
elif have yum; then
	install_with_yum
elif have pacman; then
	install_with_pacman
elif have zypper; then
	install_with_zypper
elif have apk; then
	install_with_apk
fi

if [ "$remount_virtiofs" = true ]; then
	# The shares failed to mount at boot without the module; mount them now.
	mount -t virtiofs -a
fi
