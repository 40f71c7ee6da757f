#!/bin/sh
# calima boot step (Alpine only): container engines need /sys/fs/cgroup, which OpenRC's cgroups
# service mounts. Plain mode, which runs no containers, skips this step.
set -eu

[ -f /etc/alpine-release ] || exit 0
rc-service cgroups start
