#!/bin/sh
# calima boot step: the instance called "default" shows user@host in lime green (#32CD32), so
# that its shells are easy to tell from the host's and other guests'. It changes the coloured
# prompt of the Debian/Ubuntu ~/.bashrc (the one that has `color_prompt`), once: where that
# prompt is green and the terminal can show more colours (24-bit, or 256), the green becomes
# lime. The "# Lima PS1" line marks a .bashrc that has been changed already.
set -eu

[ "${LIMA_CIDATA_NAME}" = default ] || exit 0
bashrc=${LIMA_CIDATA_HOME}/.bashrc
grep -q color_prompt "$bashrc" 2>/dev/null || exit 0
! grep -q '^# Lima PS1' "$bashrc" || exit 0

cat >>"$bashrc" <<'EOF'

# Lima PS1: calima's default instance draws user@host in lime green where the terminal can.
case "${COLORTERM:-}/${TERM:-}" in
truecolor/*) __lime='38;2;50;205;50' ;;
*/*-256color) __lime='38;5;77' ;;
*) __lime= ;;
esac
if [ -n "$__lime" ]; then
    PS1=${PS1/"\[\033[01;32m\]"/"\[\033[${__lime}m\]"}
fi
unset __lime
EOF
