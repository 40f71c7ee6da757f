#!/bin/sh
# calima boot step: Lima keeps the data of Alpine images that run from a RAM disk (the root is a
# tmpfs) on a "data-volume" disk. calima has not built that yet: such a guest runs, but what it
# writes under /etc, /home, /root, /tmp, /usr/local and /var/lib is lost at shutdown. Every other
# guest has nothing to do here.
set -eu

[ -f /etc/alpine-release ] || exit 0
[ "$(awk '$2 == "/" { print $3 }' /proc/mounts)" = "tmpfs" ] || exit 0
echo "calima: this Alpine guest runs from a RAM disk; its persistent data volume is not built" \
	"in calima yet, so changes are lost at shutdown" >&2
