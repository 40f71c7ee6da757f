#!/bin/sh
# calima boot step: a guest without a real-time clock (a kernel booted directly on some
# hypervisors) starts with the time its kernel was built, and TLS fails until NTP has corrected
# it. On such a systemd guest, move the clock to the time cidata was written (much closer), then
# wait up to about a minute for NTP. Guests with /dev/rtc0, or without systemd, are left alone.
set -eu

[ -c /dev/rtc0 ] && exit 0
command -v systemctl >/dev/null 2>&1 || exit 0

say() {
	echo "calima: $(date -u '+%Y-%m-%dT%H:%M:%SZ'): $*"
}

synchronized() {
	[ "$(timedatectl show --property=NTPSynchronized --value 2>/dev/null)" = "yes" ]
}

if ! synchronized; then
	reference="${LIMA_CIDATA_MNT:-/mnt/lima-cidata}/user-data"
	[ -f "$reference" ] || reference="$0"
	# timedatectl refuses set-time while timesyncd runs.
	systemctl stop systemd-timesyncd
	while [ "$(systemctl show systemd-timesyncd --property=MainPID --value)" != "0" ]; do
		sleep 1
	done
	when=$(stat -c %y "$reference")
	say "no RTC: setting the clock to $when (the time of $reference)"
	timedatectl set-time "$when"
	systemctl start systemd-timesyncd
fi

tries=0
while ! synchronized; do
	tries=$((tries + 1))
	if [ "$tries" -gt 60 ]; then
		say "NTP has not synchronized the clock after 60 s"
		timedatectl show-timesync --property=NTPMessage || true
		exit 1
	fi
	sleep 1
done
say "the clock is synchronized by NTP"
timedatectl show-timesync --property=NTPMessage || true
