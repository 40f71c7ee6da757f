#!/bin/sh
# Turns jq's builtin.jq into the C string literal lines that builtin.c includes as builtin.inc:
# backslashes and quotes escaped, each line quoted and ended with "\n".
set -eu
mkdir -p "$(dirname "$2")"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$1" >"$2.tmp"
mv "$2.tmp" "$2"
