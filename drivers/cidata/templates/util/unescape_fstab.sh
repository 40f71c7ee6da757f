#!/bin/sh
# calima helper (util/ is on boot.sh's PATH): a filter from stdin to stdout that turns the octal
# escapes of /etc/fstab and /proc/mounts back into characters: \040 space, \011 tab, \012
# newline, \134 backslash and \043 "#", the characters the kernel escapes in mount paths. It
# undoes escape_fstab.sh. The text is read in one pass, so a decoded backslash never starts
# another escape ("\134040" is a backslash followed by "040").
# `SELFTEST=1 unescape_fstab.sh` tests the filter.
set -eu

if [ -n "${SELFTEST:-}" ]; then
	unset SELFTEST
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
	expect "space" '/Users/me/My\040Files' '/Users/me/My Files'
	expect "tab" 'a\011b' "$(printf 'a\tb')"
	expect "newline" 'a\012b' "$(printf 'a\nb')"
	expect "backslash" 'a\134b' 'a\b'
	expect "hash" 'a\043b' 'a#b'
	expect "a decoded backslash starts no escape" 'a\134040' 'a\040'
	expect "other backslashes stay" 'a\b\1' 'a\b\1'
	expect "no escapes" '/mnt/plain' '/mnt/plain'
	exit "$failed"
fi

awk '
BEGIN { decoded["040"] = " "; decoded["011"] = "\t"; decoded["012"] = "\n"; decoded["134"] = "\\"; decoded["043"] = "#" }
{
	rest = $0
	out = ""
	while ((i = index(rest, "\\")) > 0) {
		code = substr(rest, i + 1, 3)
		if (code in decoded) {
			out = out substr(rest, 1, i - 1) decoded[code]
			rest = substr(rest, i + 4)
		} else {
			out = out substr(rest, 1, i)
			rest = substr(rest, i + 1)
		}
	}
	print out rest
}
'
