#!/bin/sh
# calima boot step: /run/host-services is where the host links the forwarded ssh-agent socket
# (ssh.forwardAgent). The host does that over ssh as the user, who must not need sudo for it, so
# the directory is made here, private to the user. /run is empty after every boot.
set -eu

mkdir -p /run/host-services
chmod 700 /run/host-services
chown -R "$LIMA_CIDATA_USER" /run/host-services
