#!/bin/sh
# calima's guest-side driver for the cidata ISO (runtime spec §3.6). cloud-init's per-boot hook
# (user-data write_files) runs it as root on every boot, with LIMA_CIDATA_MNT naming the mount
# point of the ISO. It loads the instance settings, runs the boot steps, applies `provision:`,
# and finally writes this boot's instance id to lima-boot-done: the host waits for that marker.
# A step that fails is logged and turns the exit code to 1, but the steps after it still run.
set -eu

# "LIMA <time>| " starts every line we log: /var/log/cloud-init-output.log is where users and
# `limactl start --progress` look. (No line may say both "cloud-init" and "finished": the
# progress reader takes such a line for the end of cloud-init.)
log() {
	echo "LIMA $(date -Iseconds)| $*"
}

warn() {
	log "WARNING: $*"
}

UNAME=$(uname -s)
RUN=/run
if [ "$UNAME" != Linux ]; then
	RUN=/var/run # BSD and macOS guests keep runtime files here
fi

# Markers describe this boot only. A step about to reboot the guest touches the reboot marker;
# lima-boot-done is then not written, so the host keeps waiting for the next boot.
rm -f "${RUN}/lima-boot-done"
LIMA_REBOOT_REQUIRED="${RUN}/lima-reboot-required"
export LIMA_REBOOT_REQUIRED
rm -f "$LIMA_REBOOT_REQUIRED"

# lima.env and param.env: each non-empty line is one NAME=value to export, blanks around it
# aside.
export_each_line() {
	while read -r line || [ -n "$line" ]; do
		if [ -n "$line" ]; then
			# shellcheck disable=SC2163 # the line is NAME=value: export it whole
			export "$line"
		fi
	done
}
export_each_line <"${LIMA_CIDATA_MNT}/lima.env"
export_each_line <"${LIMA_CIDATA_MNT}/param.env"

# etc_environment is meant for pam_env, so read it the way pam_env does: blanks and an
# "export " before the name do not count, "#" ends the value (blanks before it stay), and a
# quote that opens the value is dropped together with a quote that ends it (the two need not be
# the same character).
while IFS= read -r line; do
	if [ -n "$line" ]; then
		# shellcheck disable=SC2163 # the line is NAME=value: export it whole
		export "$line"
	fi
done <<EOF
$(sed -e 's/^[[:blank:]]*//' -e 's/[[:blank:]]*$//' -e 's/^export //' -e 's/#.*$//' \
	-e "/^[^=][^=]*=[\"']/{" -e "s/=[\"']/=/" -e "s/[\"']\$//" -e '}' \
	"${LIMA_CIDATA_MNT}/etc_environment")
EOF

# Steps and provision scripts may call the helpers of util/ by name.
PATH="${LIMA_CIDATA_MNT}/util:${PATH}"
export PATH

CODE=0

# Runs every *.sh of a directory in name order; a failure is recorded, not fatal.
run_boot_scripts() {
	[ -d "$1" ] || return 0
	for f in "$1"/*.sh; do
		[ -e "$f" ] || continue
		log "Executing $f"
		if ! "$f"; then
			warn "Failed to execute $f"
			CODE=1
		fi
	done
}

# The essential steps make the guest reachable (user, sudo, sshd) and run in plain mode too.
run_boot_scripts "${LIMA_CIDATA_MNT}/boot.essential.${UNAME}"
if [ "${LIMA_CIDATA_PLAIN:-}" = 1 ]; then
	log "plain mode: the other boot steps and the guest agent are left out; provision scripts still run"
else
	run_boot_scripts "${LIMA_CIDATA_MNT}/boot.${UNAME}"
fi

# The value of the variable whose name is $1 (empty when unset).
value_of() {
	eval "printf '%s\n' \"\${$1:-}\""
}

# `mode: data` provisions: provision.data/<index> is copied to its path, unless the path exists
# and overwrite is false. A copy that fails stops boot.sh, so no boot-done is reported with the
# file missing.
if [ -d "${LIMA_CIDATA_MNT}/provision.data" ]; then
	for f in "${LIMA_CIDATA_MNT}"/provision.data/*; do
		[ -e "$f" ] || continue
		id=${f##*/}
		path=$(value_of "LIMA_CIDATA_DATAFILE_${id}_PATH")
		owner=$(value_of "LIMA_CIDATA_DATAFILE_${id}_OWNER")
		mode=$(value_of "LIMA_CIDATA_DATAFILE_${id}_PERMISSIONS")
		overwrite=$(value_of "LIMA_CIDATA_DATAFILE_${id}_OVERWRITE")
		if [ "$overwrite" = false ] && [ -e "$path" ]; then
			log "$path exists and overwrite is false: left as it is"
			continue
		fi
		log "Copying $f to $path"
		# Missing parent directories should belong to the owner, so create them as the owner;
		# when the owner may not, root creates them.
		if ! sudo -iu "${owner%%:*}" mkdir -p "$(dirname "$path")"; then
			warn "${owner%%:*} cannot create the directory of $path; creating it as root"
			mkdir -p "$(dirname "$path")"
		fi
		cp "$f" "$path"
		chown "$owner" "$path"
		chmod "$mode" "$path"
	done
fi

# `mode: yq` provisions: provision.yq/<index> is a yq expression applied to its path, which is
# created when missing. The yq evaluator is the guest agent's `yq` command (env and file operators
# disabled, as for every expression in lima.yaml), run by root because the cidata is readable by
# root only; creating and checking the file happen as its owner, so that the user cannot change a
# file through this that it could not change itself.
yq_format_of_path() {
	case "$1" in
	*.csv) echo csv ;;
	*.ini) echo ini ;;
	*.json) echo json ;;
	*.properties) echo properties ;;
	*.toml) echo toml ;;
	*.tsv) echo tsv ;;
	*.xml) echo xml ;;
	*.yaml | *.yml) echo yaml ;;
	*) echo unknown ;;
	esac
}

apply_yq() {
	expression=$1
	id=${expression##*/}
	path=$(value_of "LIMA_CIDATA_YQ_PROVISION_${id}_PATH")
	owner=$(value_of "LIMA_CIDATA_YQ_PROVISION_${id}_OWNER")
	mode=$(value_of "LIMA_CIDATA_YQ_PROVISION_${id}_PERMISSIONS")
	format=$(value_of "LIMA_CIDATA_YQ_PROVISION_${id}_FORMAT")
	user=${owner%%:*}
	yq=${LIMA_CIDATA_MNT}/lima-guestagent
	if [ ! -x "$yq" ]; then
		warn "cannot apply $expression to $path: there is no lima-guestagent (it evaluates yq) on the cidata"
		return 1
	fi
	if ! sudo -iu "$user" mkdir -p "$(dirname "$path")"; then
		warn "$user cannot create the directory of $path"
		return 1
	fi
	if [ -f "$path" ]; then
		log "Updating $path"
		if ! sudo -iu "$user" test -w "$path"; then
			warn "$user may not write $path"
			return 1
		fi
		# An in-place edit keeps the file's owner.
		if ! "$yq" yq --security-disable-env-ops --security-disable-file-ops --inplace --from-file "$expression" --input-format "$format" --output-format "$format" "$path"; then
			warn "yq could not update $path"
			return 1
		fi
	else
		if [ "$format" = auto ]; then
			# yq guesses the format from the content, and a new file has none: use its name.
			format=$(yq_format_of_path "$path")
			if [ "$format" = unknown ]; then
				format=yaml
				warn "no known format for the name $path; writing YAML"
			fi
		fi
		log "Creating $path"
		# Evaluate first, so that a failing expression leaves no empty file behind.
		content=$(mktemp)
		if ! "$yq" yq --security-disable-env-ops --security-disable-file-ops --null-input --from-file "$expression" --output-format "$format" >"$content"; then
			rm -f "$content"
			warn "yq could not evaluate $expression for $path"
			return 1
		fi
		# shellcheck disable=SC2024 # root reads its temporary file; the user writes the target
		if ! sudo -iu "$user" tee "$path" <"$content" >/dev/null; then
			rm -f "$content"
			warn "$user could not create $path"
			return 1
		fi
		rm -f "$content"
	fi
	result=0
	if ! sudo -iu "$user" chown "$owner" "$path"; then
		warn "$user could not change the owner of $path to $owner"
		result=1
	fi
	if ! sudo -iu "$user" chmod "$mode" "$path"; then
		warn "$user could not change the mode of $path to $mode"
		result=1
	fi
	return "$result"
}

if [ -d "${LIMA_CIDATA_MNT}/provision.yq" ]; then
	for f in "${LIMA_CIDATA_MNT}"/provision.yq/*; do
		[ -e "$f" ] || continue
		apply_yq "$f" || CODE=1
	done
fi

# `mode: system` provisions run as root.
if [ -d "${LIMA_CIDATA_MNT}/provision.system" ]; then
	for f in "${LIMA_CIDATA_MNT}"/provision.system/*; do
		[ -e "$f" ] || continue
		log "Executing $f"
		if ! "$f"; then
			warn "Failed to execute $f"
			CODE=1
		fi
	done
fi

# `mode: user` provisions run as the user in a login shell, with the PARAM_* variables, from a
# copy in the home directory (the user cannot read the cidata). With systemd they wait for the
# user's service manager, since scripts commonly use `systemctl --user`.
if [ -d "${LIMA_CIDATA_MNT}/provision.user" ]; then
	if [ ! -f /sbin/openrc-run ]; then
		until [ -e "/run/user/${LIMA_CIDATA_UID}/systemd/private" ]; do
			sleep 3
		done
	fi
	params=$(sed -n 's/^\(PARAM_[^=]*\)=.*/\1/p' "${LIMA_CIDATA_MNT}/param.env" | paste -sd , -)
	copy="${LIMA_CIDATA_HOME}/.lima-user-script"
	for f in "${LIMA_CIDATA_MNT}"/provision.user/*; do
		[ -e "$f" ] || continue
		log "Executing $f (as user ${LIMA_CIDATA_USER})"
		cp "$f" "$copy"
		chown "$LIMA_CIDATA_USER" "$copy"
		chmod 755 "$copy"
		if [ "$UNAME" != Linux ]; then
			warn "user provision scripts are supported on Linux guests only"
			CODE=1
		elif ! sudo -iu "$LIMA_CIDATA_USER" ${params:+"--preserve-env=${params}"} \
			"XDG_RUNTIME_DIR=/run/user/${LIMA_CIDATA_UID}" "$copy"; then
			warn "Failed to execute $f (as user ${LIMA_CIDATA_USER})"
			CODE=1
		fi
		rm -f "$copy"
	done
fi

# Without passwordless sudo the user needs a password for sudo: pick a random one, once, and
# leave it in ~/password, readable by the user only.
if [ "${LIMA_CIDATA_PASSWORDLESS_SUDO:-}" != 1 ] && [ ! -e "${LIMA_CIDATA_HOME}/.lima-password-set" ]; then
	password=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	if [ "${#password}" -ne 16 ]; then
		# Never an empty or short password.
		warn "could not read random bytes for the user's password; no password is set"
		CODE=1
	else
		if [ "$UNAME" = FreeBSD ]; then
			printf '%s\n' "$password" | pw usermod "$LIMA_CIDATA_USER" -h 0
		else
			printf '%s:%s\n' "$LIMA_CIDATA_USER" "$password" | chpasswd
		fi
		(
			umask 077
			printf '%s\n' "$password" >"${LIMA_CIDATA_HOME}/password"
		)
		chown "$LIMA_CIDATA_USER" "${LIMA_CIDATA_HOME}/password"
		touch "${LIMA_CIDATA_HOME}/.lima-password-set"
	fi
fi

# Done: the marker carries this boot's instance id, so a marker left by an earlier boot never
# passes for this one.
if [ ! -e "$LIMA_REBOOT_REQUIRED" ]; then
	echo "${LIMA_CIDATA_IID}" >"${RUN}/lima-boot-done"
fi

log "Exiting with code $CODE"
exit "$CODE"
