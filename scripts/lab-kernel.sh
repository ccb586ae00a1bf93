#!/usr/bin/env bash
# The one place that decides which Debian kernel the project works with: the lab VM boots it
# (test/lab/prepare-kernel.sh), the patched IPVS modules are built for it (kernel-patch/build.sh) and
# scripts/setup.sh installs its headers and sources. Prints KEY=VALUE lines on stdout:
#   LAB_KSERIES=6.1                         LAB_KVER=6.1.0-57-amd64 (kernel release)
#   LAB_KIMAGE_PKG=linux-image-6.1.0-57-amd64  LAB_KPKG_VERSION=6.1.192-3 (its Debian version)
#   LAB_KHEADERS_PKG=linux-headers-6.1.0-57-amd64
#   LAB_KSOURCE_PKG=linux-source-6.1        LAB_KSOURCE_TARBALL=/usr/src/linux-source-6.1.tar.xz
# Headers and source are wanted at exactly LAB_KPKG_VERSION (install "pkg=version"): the candidate of
# linux-source-<series> can be newer than the image the meta package points at.
#
# Stale package lists are what made a fresh machine resolve an old kernel, so they are refreshed first:
# `apt-get update` runs (as root) when the last successful update is older than LAB_APT_MAX_AGE_H hours
# (stamp /var/lib/apt/periodic/update-success-stamp), or when the lists cannot answer (meta package, image
# candidate, or headers/source at the image's version unknown). Not root: a warning, or an error saying what
# to run. The answer is memoised per series and state of the package lists in $LAB_CACHE/.resolved-*.
#
# Usage: lab-kernel.sh [--refresh]   (--refresh: apt-get update now, whatever the stamp says)
# Environment:
#   LAB_KERNEL         6.1 (default; meta package linux-image-amd64) or 6.12 (linux-image-6.12-amd64)
#   LAB_KERNEL_PKG     pin an image package instead (e.g. linux-image-6.1.0-56-amd64); its series wins
#   LAB_APT_MAX_AGE_H  hours before the lists count as stale (default 24)
#   LAB_APT_STAMP      the update stamp (default /var/lib/apt/periodic/update-success-stamp)
#   LAB_CACHE          where the memo lives (default /var/cache/ipvs-bpf/lab)
set -euo pipefail

die() { echo "lab-kernel: $*" >&2; exit 1; }
log() { echo "lab-kernel: $*" >&2; }

refresh=0
case "${1:-}" in
  --refresh) refresh=1 ;;
  '') ;;
  -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
  *) die "unknown argument '$1'" ;;
esac

series=${LAB_KERNEL:-6.1}
case "$series" in
  6.1) meta=linux-image-amd64 ;;
  6.12) meta=linux-image-6.12-amd64 ;;
  *) die "LAB_KERNEL='$series': use 6.1 or 6.12" ;;
esac
pinned=${LAB_KERNEL_PKG:-}
if [ -n "$pinned" ]; then
  [[ $pinned =~ ^linux-image-([0-9]+\.[0-9]+)[.-] ]] || die "LAB_KERNEL_PKG='$pinned' is not linux-image-<release>"
  series=${BASH_REMATCH[1]}
fi
max_age_h=${LAB_APT_MAX_AGE_H:-24}
[[ $max_age_h =~ ^[0-9]+$ ]] || die "LAB_APT_MAX_AGE_H='$max_age_h' is not a number of hours"
stamp=${LAB_APT_STAMP:-/var/lib/apt/periodic/update-success-stamp}
cache=${LAB_CACHE:-/var/cache/ipvs-bpf/lab}
is_root() { [ "$(id -u)" = 0 ]; }

lists_age_h() { # hours since the last successful apt-get update; a large number when unknown
  local t
  t=$(stat -c %Y "$stamp" 2>/dev/null) || { echo 999999; return; }
  echo $(( ($(date +%s) - t) / 3600 ))
}

apt_update() { # $1 = why. One updater at a time; a concurrent one's fresh result is reused.
  is_root || return 1
  local before
  before=$(stat -c %Y "$stamp" 2>/dev/null || echo 0)
  exec 8>/run/lock/ipvs-bpf-apt-update.lock && flock 8
  if [ "$(stat -c %Y "$stamp" 2>/dev/null || echo 0)" != "$before" ]; then exec 8>&-; return 0; fi
  log "apt-get update ($1)"
  if apt-get update -qq -o DPkg::Lock::Timeout=300 >&2; then
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  else
    log "warning: apt-get update failed"
    exec 8>&-
    return 1
  fi
  exec 8>&-
}

versions_of() { apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}'; }

# Prints "image version" or fails with the reason on stderr.
resolve() {
  local img=$pinned ver kver
  if [ -z "$img" ]; then
    img=$(apt-cache depends "$meta" 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
    [ -n "$img" ] || { echo "the package lists do not know $meta's kernel" >&2; return 1; }
  fi
  ver=$(apt-cache policy "$img" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n1)
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "no candidate version of $img" >&2; return 1; }
  kver=${img#linux-image-}
  versions_of "linux-headers-$kver" | grep -qxF "$ver" ||
    { echo "linux-headers-$kver has no version $ver" >&2; return 1; }
  versions_of "linux-source-$series" | grep -qxF "$ver" ||
    { echo "linux-source-$series has no version $ver (the image's)" >&2; return 1; }
  echo "$img $ver"
}

age=$(lists_age_h)
if [ $refresh = 1 ]; then
  apt_update "asked for" || is_root || die "--refresh needs root"
elif [ "$age" -ge "$max_age_h" ]; then
  if is_root; then
    apt_update "the package lists are $( [ "$age" = 999999 ] && echo "of unknown age" || echo "$age h old")" || true
  else
    log "warning: the package lists may be stale ($( [ "$age" = 999999 ] && echo "no update stamp" || echo "$age h old")):" \
        "run 'apt-get update' or 'bash scripts/setup.sh' as root"
  fi
fi

lists_key=$( { echo "$series $pinned"; stat -c '%n %s %Y' "$stamp" /var/lib/apt/lists/* /etc/apt/preferences* 2>/dev/null; } |
             sha256sum | cut -c1-16)
memo=$cache/.resolved-$series-$lists_key
answer=
[ -s "$memo" ] && answer=$(cat "$memo")
if [ -z "$answer" ]; then
  if ! answer=$(resolve 2>&1); then
    is_root || die "$answer: run 'apt-get update' or 'bash scripts/setup.sh' as root"
    apt_update "$answer" || die "$answer, and apt-get update failed"
    answer=$(resolve 2>&1) || die "$answer, even after apt-get update"
  fi
  if mkdir -p "$cache" 2>/dev/null; then
    rm -f "$cache/.resolved-$series-"*
    echo "$answer" >"$memo.$$" 2>/dev/null && mv "$memo.$$" "$memo"
  fi
fi
read -r img ver <<<"$answer"
kver=${img#linux-image-}
printf '%s\n' "LAB_KSERIES=$series" "LAB_KVER=$kver" "LAB_KIMAGE_PKG=$img" "LAB_KPKG_VERSION=$ver" \
  "LAB_KHEADERS_PKG=linux-headers-$kver" "LAB_KSOURCE_PKG=linux-source-$series" \
  "LAB_KSOURCE_TARBALL=/usr/src/linux-source-$series.tar.xz"
