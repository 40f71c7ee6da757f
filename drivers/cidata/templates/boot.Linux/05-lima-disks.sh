#!/bin/sh
# calima boot step: the `additionalDisks:` of the instance. lima.env describes disk <i> as
# LIMA_CIDATA_DISK_<i>_{NAME,DEVICE,FORMAT,FSTYPE,FSARGS}. A disk that has no file system
# labelled lima-<name> yet is new: unless `format: false`, it gets one GPT partition holding a
# file system (ext4 unless `fsType:` says otherwise) or swap, labelled lima-<name>. Every boot
# then mounts the partition on /mnt/lima-<name> (or turns the swap on) and grows the partition
# and its file system, since the disk may have been resized while the instance was stopped.
set -eu

[ "${LIMA_CIDATA_DISKS:-0}" -gt 0 ] || exit 0

# The value of LIMA_CIDATA_DISK_<i>_<field>, empty when unset.
disk_field() {
	eval "printf '%s\n' \"\${LIMA_CIDATA_DISK_${1}_${2}:-}\""
}

i=0
while [ "$i" -lt "$LIMA_CIDATA_DISKS" ]; do
	name=$(disk_field "$i" NAME)
	device=/dev/$(disk_field "$i" DEVICE)
	format=$(disk_field "$i" FORMAT)
	fstype=$(disk_field "$i" FSTYPE)
	fsargs=$(disk_field "$i" FSARGS)
	i=$((i + 1))
	: "${format:=true}" "${fstype:=ext4}"
	label=lima-${name}
	partition=${device}1

	if [ ! -b "/dev/disk/by-label/${label}" ] && [ "$format" = true ]; then
		echo "calima: formatting $device for disk $name ($fstype)"
		if [ "$fstype" = swap ]; then
			echo 'type=swap' | sfdisk --label gpt "$device"
			# shellcheck disable=SC2086 # fsArgs are separate arguments
			mkswap $fsargs -L "$label" "$partition"
		else
			echo 'type=linux' | sfdisk --label gpt "$device"
			# shellcheck disable=SC2086 # fsArgs are separate arguments
			"mkfs.${fstype}" $fsargs -L "$label" "$partition"
		fi
	fi

	if [ "$fstype" = swap ]; then
		swapon "$partition"
	else
		mkdir -p "/mnt/${label}"
		mount -t "$fstype" "$partition" "/mnt/${label}"
	fi

	# Grow online; both tools are optional (cloud-utils and e2fsprogs).
	if command -v growpart >/dev/null 2>&1 && command -v resize2fs >/dev/null 2>&1; then
		growpart "$device" 1 || true # fails when there is no room to grow
		case "$fstype" in
		swap) ;;
		ext2 | ext3 | ext4) resize2fs "/dev/disk/by-label/${label}" || true ;;
		xfs) xfs_growfs "/dev/disk/by-label/${label}" || true ;;
		*) echo "calima: disk $name: calima cannot grow a $fstype file system; it keeps its size" >&2 ;;
		esac
	fi
done
