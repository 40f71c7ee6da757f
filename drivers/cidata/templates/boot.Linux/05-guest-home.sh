#!/bin/sh
# calima boot step: the guest home is /home/<user>.guest; instances made by Lima before 2.1 used
# /home/<user>.linux. Whichever of the two exists, make the other name a symlink to it, so that
# paths written with either name keep working. (The home exists by now: cloud-init created the
# user before its per-boot hook started boot.sh.)
set -eu

home=/home/${LIMA_CIDATA_USER}
if [ -d "${home}.guest" ] && [ ! -e "${home}.linux" ]; then
	ln -s "${LIMA_CIDATA_USER}.guest" "${home}.linux"
fi
if [ -d "${home}.linux" ] && [ ! -e "${home}.guest" ]; then
	ln -s "${LIMA_CIDATA_USER}.linux" "${home}.guest"
fi
