#!/bin/bash
# calima boot step: after `upgradePackages`, cloud-init reboots apt-based guests that need it on
# its own, but not dnf-based ones. Ask dnf (its needs-restarting plugin, when installed) and, if
# a reboot is needed, mark it in $LIMA_REBOOT_REQUIRED (runtime spec §3.7) and reboot.
set -eu

if [ "$LIMA_CIDATA_UPGRADE_PACKAGES" != "1" ] || ! command -v dnf >/dev/null 2>&1; then
	exit 0
fi
if ! dnf -h needs-restarting >/dev/null 2>&1; then
	exit 0 # the plugin is not installed: nothing to ask
fi

# `check-update` exits 100 when updates are pending and 1 on errors.
rc=0
dnf check-update >/dev/null || rc=$?
if [ "$rc" = "1" ]; then
	exit 0
fi

# `needs-restarting -r` exits 1 when a reboot is needed; its words are translated, so pin C.
rc=0
report=$(LC_ALL=C.UTF-8 dnf needs-restarting -r) || rc=$?
echo "$report"
if [ "$rc" = "1" ] && printf '%s\n' "$report" | grep -q "Reboot is required"; then
	touch "$LIMA_REBOOT_REQUIRED"
	systemctl reboot
fi
