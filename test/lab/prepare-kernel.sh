#!/usr/bin/env bash
# Make Debian's stock kernel (the one scripts/lab-kernel.sh resolves: LAB_KERNEL=6.1 follows linux-image-amd64,
# 6.12 linux-image-6.12-amd64) ready for the lab VM, and print where it is as KEY=VALUE lines on stdout:
#   LAB_KVER=6.1.0-57-amd64  LAB_KSERIES=6.1  LAB_KPKG_VERSION=6.1.192-3  LAB_KDIR=<cache dir>
#   LAB_VMLINUZ=<kernel image>  LAB_MODULES_DIR=<.../lib/modules/LAB_KVER>
#
# The package is downloaded and unpacked (never installed) into $LAB_CACHE/<kernel release>/, outside the
# checkout so that every clone and CI run on this machine reuses it. A cache entry counts only if its stamp
# (written last) names the same package, version and cache format as wanted now; anything else is a stale or
# half-built entry and is rebuilt. An flock on $LAB_CACHE/.lock keeps concurrent runs from building at once.
#
# Environment: LAB_CACHE (default /var/cache/ipvs-bpf/lab), LAB_KERNEL, LAB_KERNEL_PKG (see lab-kernel.sh).
set -euo pipefail

readonly CACHE_FORMAT=1   # bump when the layout of a cache entry changes
LAB_CACHE=${LAB_CACHE:-/var/cache/ipvs-bpf/lab}

die() { echo "prepare-kernel: $*" >&2; exit 1; }
log() { echo "prepare-kernel: $*" >&2; }

for tool in apt-cache apt-get dpkg-deb depmod flock sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found (install Debian packages apt, dpkg, kmod, util-linux)"
done

# Which package, version and release: scripts/lab-kernel.sh decides (LAB_KERNEL=6.1|6.12, LAB_KERNEL_PKG),
# after refreshing stale package lists, for the patch build and setup.sh alike.
here=$(cd "$(dirname "$0")" && pwd)
resolved=$(LAB_CACHE=$LAB_CACHE bash "$here/../../scripts/lab-kernel.sh") || exit 1
pkg= pkgver= kver= series=
while IFS='=' read -r k v; do
  case "$k" in
    LAB_KIMAGE_PKG) pkg=$v ;;
    LAB_KPKG_VERSION) pkgver=$v ;;
    LAB_KVER) kver=$v ;;
    LAB_KSERIES) series=$v ;;
  esac
done <<<"$resolved"
[ -n "$pkg" ] && [ -n "$pkgver" ] && [ -n "$kver" ] || die "scripts/lab-kernel.sh printed no kernel"

kdir=$LAB_CACHE/$kver
stamp=$kdir/stamp
want_stamp=$(printf 'format=%s\npackage=%s\nversion=%s\n' "$CACHE_FORMAT" "$pkg" "$pkgver")

entry_ok() { # $1 = cache entry dir; true when its stamp matches $want_stamp and its files are there
  [ -f "$1/stamp" ] && [ "$(head -n3 "$1/stamp")" = "$want_stamp" ] &&
    [ -f "$1/root/boot/vmlinuz-$kver" ] && [ -s "$1/root/lib/modules/$kver/modules.dep" ]
}

emit() {
  printf 'LAB_KVER=%s\nLAB_KSERIES=%s\nLAB_KPKG_VERSION=%s\nLAB_KDIR=%s\nLAB_VMLINUZ=%s\nLAB_MODULES_DIR=%s\n' \
    "$kver" "$series" "$pkgver" "$kdir" "$kdir/root/boot/vmlinuz-$kver" "$kdir/root/lib/modules/$kver"
  if [ -s "$kdir/vmlinux" ]; then echo "LAB_VMLINUX=$kdir/vmlinux"; fi
}

# The uncompressed kernel, for qemu's direct PVH boot: under TCG, the bzImage's own decompression of the
# kernel costs seconds of every boot (5 to 20 s measured, depending on load). Derived from the entry, added
# to it when missing (written via rename); skipped when the kernel lacks PVH or the format is unknown.
add_vmlinux() {
  local bz=$kdir/root/boot/vmlinuz-$kver spec magic tool off
  [ -s "$kdir/vmlinux" ] && return 0
  grep -q '^CONFIG_PVH=y' "$kdir/root/boot/config-$kver" 2>/dev/null || return 0
  for spec in '\xfd7zXZ\x00:xz' '\x28\xb5\x2f\xfd:zstd' '\x1f\x8b\x08:gzip'; do
    magic=${spec%:*} tool=${spec##*:}
    command -v "$tool" >/dev/null || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$bz" | cut -d: -f1); do
      tail -c +$((off + 1)) "$bz" | "$tool" -dc >"$kdir/vmlinux.tmp" 2>/dev/null || true  # trailing data
      if [ "$(head -c 4 "$kdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
        return 0
      fi
    done
  done
  rm -f "$kdir/vmlinux.tmp"
}

if entry_ok "$kdir" && [ -s "$kdir/vmlinux" ]; then emit; exit 0; fi

mkdir -p "$LAB_CACHE" || die "cannot create $LAB_CACHE (run as root, or set LAB_CACHE)"
exec 9>"$LAB_CACHE/.lock"
flock 9
if entry_ok "$kdir"; then add_vmlinux; emit; exit 0; fi   # built earlier, or by another run while we waited

log "preparing $pkg $pkgver in $kdir"
started=$(date +%s)
rm -rf "$kdir"
mkdir -p "$kdir/dl"
(cd "$kdir/dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$pkgver" >&2) ||
  die "apt-get download $pkg=$pkgver failed"
deb=$(ls "$kdir"/dl/*.deb)
dpkg-deb -x "$deb" "$kdir/root"
[ -f "$kdir/root/boot/vmlinuz-$kver" ] || die "$deb has no boot/vmlinuz-$kver"
depmod -b "$kdir/root" "$kver"
deb_sha=$(sha256sum "$deb" | cut -d' ' -f1)
rm -rf "$kdir/dl"
{ echo "$want_stamp"; echo "deb_sha256=$deb_sha"; echo "built=$(date -u +%FT%TZ)"; } >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
add_vmlinux
log "prepared $kver in $(( $(date +%s) - started )) s"
emit
