#!/bin/sh
# calima boot step (vz with virtiofs only): give the virtiofs shares an SELinux label, on
# kernels with SELinux. A share is the host's files, so it is labelled as a network file system
# (nfs_t), which container-selinux already lets containers use; container_file_t would suit
# containers only. The Rosetta share holds a binary that systemd-binfmt registers, and that
# needs an executable's label (bin_t). The label goes into the share's fstab line (as a
# context= option), and a share mounted without it is mounted again.
set -eu

[ "${LIMA_CIDATA_VMTYPE:-}" = vz ] && [ "${LIMA_CIDATA_MOUNTTYPE:-}" = virtiofs ] || exit 0
[ -d /sys/fs/selinux ] || exit 0

nfs_label=system_u:object_r:nfs_t:s0
bin_label=system_u:object_r:bin_t:s0

# Line numbers of the fstab lines that mention virtiofs; the edits below keep the line count.
# shellcheck disable=SC2013 # each word is a line number
for n in $(grep -n virtiofs /etc/fstab | cut -d: -f1); do
	fields=$(awk -v n="$n" 'NR == n { print $1, $2, $4 }' /etc/fstab)
	tag=${fields%% *}
	options=${fields##* }
	case "$options" in
	*context*) continue ;; # labelled already, by us or by the user
	esac
	case "$tag" in
	*rosetta*) label=$bin_label ;;
	*) label=$nfs_label ;;
	esac
	sed -i -e "${n}s/comment=cloudconfig/comment=cloudconfig,context=\"${label}\"/g" /etc/fstab

	mounted=$(awk -v t="$tag" '$1 == t { print $4 }' /proc/mounts)
	case "$mounted" in
	*"$label"*) continue ;;
	esac
	fields=$(awk -v n="$n" 'NR == n { print $2, $4 }' /etc/fstab)
	mount_point=${fields%% *}
	options=${fields##* }
	# Rosetta shares labelled nfs_t by older versions are registered with binfmt_misc; drop the
	# registration before remounting, systemd-binfmt registers it again.
	case "$tag:$mounted" in
	*rosetta*:*"$nfs_label"*)
		if [ -f /proc/sys/fs/binfmt_misc/rosetta ]; then
			echo -1 >/proc/sys/fs/binfmt_misc/rosetta
		fi
		;;
	esac
	echo "calima: mounting $tag on $mount_point again with the SELinux label $label"
	if [ -n "$mounted" ]; then
		umount "$tag"
	fi
	mount -t virtiofs "$tag" "$mount_point" -o "$options"
done
