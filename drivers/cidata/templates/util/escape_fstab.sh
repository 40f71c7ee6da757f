#!/bin/sh
# calima helper (util/ is on boot.sh's PATH): a filter from an fstab on stdin to stdout.
# cloud-init writes the mount point of a `mounts:` entry as it is, so a virtiofs share whose
# mount point has a blank in it gives a line that mount(8) splits at the blank; with "nofail"
# the share is then skipped without a word. This writes such mount points with the octal
# escapes of fstab(5) (\040 space, \011 tab, \134 backslash). Only virtiofs lines that
# cloud-init wrote ("comment=cloudconfig" in the options) and that still contain a blank are
# touched, so the filter can run any number of times. cloud-init separates the fields of its
# lines with tabs, so a space does not end a field here.
# `SELFTEST=1 escape_fstab.sh` tests the filter.
set -eu

if [ -n "${SELFTEST:-}" ]; then
	unset SELFTEST
	t=$(printf '\t')
	failed=0
	expect() { # expect DESCRIPTION INPUT OUTPUT
		got=$(printf '%s\n' "$2" | "$0")
		if [ "$got" = "$3" ]; then
			echo "ok: $1"
		else
			printf 'FAIL: %s\n  want: %s\n  got:  %s\n' "$1" "$3" "$got" >&2
			failed=1
		fi
	}
	opts="rw,nofail,comment=cloudconfig"
	expect "blanks in a cloud-init virtiofs mount point are escaped" \
		"share${t}/Users/me/My Files${t}virtiofs${t}${opts}${t}0${t}0" \
		"share${t}/Users/me/My\\040Files${t}virtiofs${t}${opts}${t}0${t}0"
	expect "a backslash is escaped too, before the blanks" \
		"share${t}/x\\y z${t}virtiofs${t}${opts}${t}0${t}0" \
		"share${t}/x\\134y\\040z${t}virtiofs${t}${opts}${t}0${t}0"
	expect "an escaped line stays as it is" \
		"share${t}/Users/me/My\\040Files${t}virtiofs${t}${opts}${t}0${t}0" \
		"share${t}/Users/me/My\\040Files${t}virtiofs${t}${opts}${t}0${t}0"
	expect "a mount point without blanks stays as it is" \
		"share${t}/mnt/plain${t}virtiofs${t}${opts}${t}0${t}0" \
		"share${t}/mnt/plain${t}virtiofs${t}${opts}${t}0${t}0"
	expect "a line cloud-init did not write stays as it is" \
		"share${t}/a b${t}virtiofs${t}rw${t}0${t}0" \
		"share${t}/a b${t}virtiofs${t}rw${t}0${t}0"
	expect "other file systems stay as they are" \
		"/dev/vdb1${t}/a b${t}ext4${t}defaults,comment=cloudconfig${t}0${t}0" \
		"/dev/vdb1${t}/a b${t}ext4${t}defaults,comment=cloudconfig${t}0${t}0"
	exit "$failed"
fi

awk '
BEGIN { FS = "\t"; OFS = "\t" }
$3 == "virtiofs" && index($4, "comment=cloudconfig") > 0 && $2 ~ /[ \t]/ {
	gsub(/\\/, "\\134", $2) # first, or the escapes added below would be escaped again
	gsub(/ /, "\\040", $2)
	gsub(/\t/, "\\011", $2)
}
{ print }
'
