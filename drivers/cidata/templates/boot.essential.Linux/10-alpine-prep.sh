#!/bin/sh
# calima boot step (Alpine only, plain mode too): what the host needs from any guest, which
# Alpine does not give by default. The host checks readiness over ssh with public-key logins,
# runs commands with sudo, forwards ports through sshd, and stops the guest with an ACPI
# power-button press.
set -eu

[ -f /etc/alpine-release ] || exit 0

# The main and community repositories of this release (edge for development snapshots).
version=$(sed -n 's/^VERSION_ID=//p' /etc/os-release | tr -d '"')
case "$version" in
*_alpha* | *_beta*) branch=edge ;;
*.*.*) branch="v${version%.*}" ;;
*) branch=edge ;;
esac
for repository in main community; do
	url="https://dl-cdn.alpinelinux.org/alpine/${branch}/${repository}"
	grep -qxF "$url" /etc/apk/repositories || echo "$url" >>/etc/apk/repositories
done

# Alpine ships doas.
command -v sudo >/dev/null 2>&1 || apk add sudo

# Without PAM, sshd refuses even a public key to a locked account ("!" as the password hash);
# "*" keeps password logins impossible but lets keys in.
usermod -p '*' "$LIMA_CIDATA_USER"

# Port forwarding goes through sshd; UsePAM lets pam_env read /etc/environment for ssh sessions.
sed -i -e 's/AllowTcpForwarding no/AllowTcpForwarding yes/g' -e 's/#UsePAM no/UsePAM yes/g' /etc/ssh/sshd_config
rc-service --ifstarted sshd reload

# acpid turns the power button into a clean shutdown.
rc-update add acpid
rc-service acpid start
