#!/bin/bash
# Origin: lima-vm/lima pkg/cidata/cidata.TEMPLATE.d/boot.Linux/06-etc-hosts.sh (Apache-2.0).

# SPDX-FileCopyrightText: Copyright The Lima Authors
# SPDX-License-Identifier: Apache-2.0

set -eux -o pipefail

# Define host.lima.internal in case the hostResolver is disabled. When using
# the hostResolver, the name is provided by the lima resolver itself because
# it doesn't have access to /etc/hosts inside the VM.
sed '/host.lima.internal/d' /etc/hosts >/etc/hosts.tmp
cat /etc/hosts.tmp >/etc/hosts
rm -f /etc/hosts.tmp
echo -e "${LIMA_CIDATA_SLIRP_GATEWAY}\thost.lima.internal" >>/etc/hosts
