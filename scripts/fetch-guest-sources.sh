#!/usr/bin/env bash
# Fetches the Debian source packages of jq and oniguruma (libonig) into
# ${CALIMA_GUEST_SRC:-~/.cache/calima/guest-src}/{jq,onig}, patched as Debian ships them.
#
# Why: lima-guestagent runs inside any Linux guest, so it is linked statically, and it evaluates
# `mode: yq` provisions (`lima-guestagent yq`) with the same libjq as limactl. Debian ships libjq
# and libonig as shared libraries only, so guest/yq/ compiles them from these sources.
#
# apt's configuration is private to this script (a copy of the host's Debian sources as deb-src,
# lists under the cache directory): the host's apt state is not touched and root is not needed.
# Idempotent: does nothing when both trees are present.
set -euo pipefail

dest=${CALIMA_GUEST_SRC:-$HOME/.cache/calima/guest-src}
if [ -f "$dest/jq/src/jq.h" ] && [ -f "$dest/onig/src/oniguruma.h" ]; then
  echo "fetch-guest-sources: present in $dest ($(cat "$dest/versions" 2>/dev/null || echo '?'))"
  exit 0
fi
for tool in apt-get apt-cache dpkg-source; do
  command -v "$tool" >/dev/null || { echo "fetch-guest-sources: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/sources.list.d" "$work/lists/partial" "$work/cache/archives/partial" "$work/out"

# The host's Debian repositories, as source repositories.
found=0
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  grep -q 'debian' "$f" || continue
  sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$work/etc/sources.list.d/$(basename "$f")"
  found=1
done
if [ -f /etc/apt/sources.list ]; then
  sed -nE 's/^deb[[:space:]]+/deb-src /p' /etc/apt/sources.list >"$work/etc/sources.list.d/host.list"
  [ -s "$work/etc/sources.list.d/host.list" ] && found=1
fi
for f in /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  grep -q 'debian' "$f" || continue
  sed -nE 's/^deb[[:space:]]+/deb-src /p' "$f" >"$work/etc/sources.list.d/$(basename "$f")"
done
[ "$found" -eq 1 ] || { echo "fetch-guest-sources: no Debian repository in /etc/apt" >&2; exit 1; }

apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/etc/sources.list.d"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)"
)
apt-get "${apt_opts[@]}" -qq update

# Newest version first; a version whose files the mirror does not serve (some mirrors carry the
# security archive's binaries but not its sources) is skipped for the next one.
fetch() { # package dir-name
  local pkg=$1 name=$2 v
  for v in $(apt-cache "${apt_opts[@]}" showsrc "$pkg" | sed -n 's/^Version: //p' | sort -rV | uniq); do
    rm -rf "$work/out"/*
    if (cd "$work/out" && apt-get "${apt_opts[@]}" -qq source "$pkg=$v" >/dev/null 2>"$work/err"); then
      local tree
      tree=$(find "$work/out" -mindepth 1 -maxdepth 1 -type d | head -1)
      rm -rf "${dest:?}/$name"
      mv "$tree" "$dest/$name"
      echo "$pkg $v" >>"$work/versions"
      echo "fetch-guest-sources: $pkg $v"
      return 0
    fi
    echo "fetch-guest-sources: $pkg $v not available ($(grep -m1 '^E:' "$work/err" || true)), trying an older one"
  done
  echo "fetch-guest-sources: cannot fetch the source of $pkg from Debian's archive" >&2
  return 1
}
fetch jq jq
fetch libonig onig
mv "$work/versions" "$dest/versions"
