#!/bin/sh
# calima boot step: a user whose uid is in the range systemd treats as a system user (up to 1000
# here) cannot read its own journal unless it is in `systemd-journal`; add it, so that
# `journalctl --user` works. Distributions without that group are left alone.
set -eu

if [ "$LIMA_CIDATA_UID" -gt 1000 ]; then
	exit 0
fi
if ! getent group systemd-journal >/dev/null 2>&1; then
	exit 0
fi
usermod --append --groups systemd-journal "$LIMA_CIDATA_USER"
