#!/bin/sh
# calima boot step (Alpine only, plain mode too): Alpine cloud images come with a user "alpine"
# holding uid 1000, which the instance's user often wants. cloud-init sets up users on the first
# boot only, so when that user is in the way, delete it, make cloud-init forget this instance and
# reboot: the next boot creates our user from scratch. root also needs a sudo rule of its own,
# because boot.sh runs commands as the user with `sudo -iu`.
set -eu

[ -f /etc/alpine-release ] || exit 0

rule=/etc/sudoers.d/00-root-user
if [ ! -f "$rule" ]; then
	echo "root ALL=(ALL) NOPASSWD:ALL" >"$rule"
	chmod 0440 "$rule"
fi

if [ "$LIMA_CIDATA_USER" = alpine ] || [ "$(id -u alpine 2>/dev/null)" != 1000 ]; then
	exit 0
fi
echo "calima: removing the image's user alpine (uid 1000) and rebooting, so that cloud-init creates $LIMA_CIDATA_USER"
userdel alpine
rmdir /home/alpine 2>/dev/null || true # kept when it is not empty
cloud-init clean --logs
# Tell boot.sh not to report this boot as done.
touch "$LIMA_REBOOT_REQUIRED"
reboot
