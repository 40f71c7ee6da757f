#!/bin/sh
# calima helper (util/ is on boot.sh's PATH): compare two version strings in `sort -V` order,
# e.g. a kernel release against the first release with a feature.
#   compare_version.sh A OP B     OP is -eq, -ne, -lt, -le, -gt or -ge; exits 0 when A OP B holds
# -eq and -ne compare the strings as they are. `SELFTEST=1 compare_version.sh` tests the helper.
set -eu

if [ -n "${SELFTEST:-}" ]; then
	unset SELFTEST
	failed=0
	expect() { # expect true|false A OP B
		want=$1
		shift
		if "$0" "$@"; then got=true; else got=false; fi
		if [ "$got" = "$want" ]; then
			echo "ok: $* is $want"
		else
			echo "FAIL: $* should be $want" >&2
			failed=1
		fi
	}
	expect true 1.2.3 -eq 1.2.3
	expect false 1.2.3 -eq 1.2.4
	expect true 1.2.3 -ne 1.2.4
	expect false 1.2.3 -ne 1.2.3
	expect true 1.2.10 -gt 1.2.9
	expect false 1.2.3 -gt 1.2.3
	expect true 1.2.3 -ge 1.2.3
	expect true 1.10 -ge 1.9.9
	expect false 1.2.3 -ge 1.2.4
	expect true 1.2.9 -lt 1.2.10
	expect false 1.2.3 -lt 1.2.3
	expect true 1.2.3 -le 1.2.3
	expect false 1.2.10 -le 1.2.9
	expect true 6.1.0-28-amd64 -ge 5.13
	expect true 5.4.0-150-generic -lt 5.13
	exit "$failed"
fi

if [ "$#" -ne 3 ]; then
	cat >&2 <<EOF
usage: $0 VERSION OP VERSION
  OP: -eq -ne -lt -le -gt -ge (versions ordered as by sort -V)
  e.g. $0 "\$(uname -r)" -ge 5.13
EOF
	exit 1
fi

a=$1
op=$2
b=$3
# The later of the two versions.
later=$(printf '%s\n%s\n' "$a" "$b" | sort -V | tail -n 1)

case "$op" in
-eq) [ "$a" = "$b" ] ;;
-ne) [ "$a" != "$b" ] ;;
-ge) [ "$later" = "$a" ] ;;
-gt) [ "$a" != "$b" ] && [ "$later" = "$a" ] ;;
-le) [ "$later" = "$b" ] ;;
-lt) [ "$a" != "$b" ] && [ "$later" = "$b" ] ;;
*)
	echo "$0: unknown operator $op (use -eq, -ne, -lt, -le, -gt or -ge)" >&2
	exit 1
	;;
esac
