#!/usr/bin/env bash
# The main job for now: create instances in a scratch LIMA_HOME and list them.
# (Starting VMs arrives with the supervisor.)
set -euo pipefail
cd "$(dirname "$0")/.."
limactl=$PWD/build/bin/limactl
scratch=$(mktemp -d /tmp/calima-demo.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export LIMA_HOME=$scratch/lima
set -x
printf 'images: [{location: /etc/profile}]\ndisk: 1M\n' | "$limactl" create --name foo -
"$limactl" create --tty=false --name demo --cpus 2 --memory 2 template:default
"$limactl" ls
"$limactl" ls --json foo
"$limactl" ls --format '{{.Name}} {{.Disk}}'
"$limactl" validate template:debian
