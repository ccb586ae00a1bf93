#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the patched IPVS modules (ip_vs, its schedulers and helpers, xt_ipvs)
# out of tree for one Debian kernel:
#   1. take net/netfilter/ipvs/, net/netfilter/xt_ipvs.c and include/net/ip_vs.h
#      from Debian's linux-source-<series> tarball (6.1 for 6.1.0-57-amd64),
#   2. apply patches/*.patch in name order, without fuzz; for a series with a
#      patches-<series>/ directory (6.12), a patch there replaces the one of
#      the same name and one with a new name joins the series in name order;
#      copy the map ABI header (bpf/include/ipvs_bpf_abi.h) to
#      include/net/ipvs_bpf_abi.h,
#   3. run kbuild against /usr/src/linux-headers-<kver>.
#
# The tree and the .ko files are cached in
#   $IPVS_BPF_KMOD_CACHE/<kver>-<hash>/   (default /var/cache/ipvs-bpf/kmod)
# where <hash> covers the patches used, the ABI header, Kbuild.top, this script and
# the linux-source version; an entry counts only once its "stamp" is written.
#
# Usage: build.sh [--kver <release>] [--out <dir>] [--print-dir] [--force]
#   --kver       kernel release, e.g. 6.1.0-57-amd64 (default: $kernelver under
#                DKMS, else what scripts/lab-kernel.sh resolves, LAB_KERNEL=6.1|6.12)
#   --out        also copy the built .ko files into <dir> (flat), e.g. for DKMS
#   --print-dir  print the cache entry (with the .ko files under it) on stdout
#   --force      rebuild even if the cache entry is complete
# Environment: IPVS_BPF_KMOD_CACHE, IPVS_BPF_ABI_HEADER (path of the header),
#   LINUX_SOURCE_TARBALL (default /usr/src/linux-source-<series>.tar.xz),
#   IPVS_BPF_ALLOW_SRC_MISMATCH=1 to accept a linux-source whose Debian version
#   differs from the headers package.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "kernel-patch/build: $*" >&2; exit 1; }
log() { echo "kernel-patch/build: $*" >&2; }

kver=${kernelver:-}
out=
print_dir=0
force=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) kver=${2:?--kver needs a value}; shift 2 ;;
	--out) out=${2:?--out needs a value}; shift 2 ;;
	--print-dir) print_dir=1; shift ;;
	--force) force=1; shift ;;
	-h|--help) sed -n "3,29p" "$0"; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
done

# Without --kver (and outside DKMS), the project's kernel resolver decides (LAB_KERNEL=6.1|6.12), the same
# one the lab VM and scripts/setup.sh use; a staged DKMS tree has no resolver and always gets --kver.
resolver=$here/../scripts/lab-kernel.sh
if [ -z "$kver" ]; then
	[ -f "$resolver" ] || die "no kernel given: pass --kver"
	kver=$(bash "$resolver" | sed -n 's/^LAB_KVER=//p')
	[ -n "$kver" ] || die "scripts/lab-kernel.sh resolved no kernel; pass --kver"
fi
# The series (6.1, 6.12, ...) names the linux-source package: 6.1.0-57-amd64 -> 6.1, 6.12.117+deb12-amd64 -> 6.12.
[[ $kver =~ ^([0-9]+\.[0-9]+)[.-] ]] || die "cannot tell the kernel series of '$kver'"
series=${BASH_REMATCH[1]}
srcpkg=linux-source-$series
fix="run 'bash scripts/setup.sh' (LAB_KERNEL=$series) or apt-get install"

kdir=/usr/src/linux-headers-$kver
[ -f "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
[ -f "$kdir/Makefile" ] ||
	die "no headers for $kver ($fix linux-headers-$kver)"

hdr_ver=$(dpkg-query -W -f '${Version}' "linux-headers-$kver" 2>/dev/null || true)
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/$srcpkg.tar.xz}
[ -f "$tarball" ] || die "$tarball missing ($fix $srcpkg${hdr_ver:+=$hdr_ver})"

# The IPVS sources must come from the same Debian upload as the headers.
src_ver=$(dpkg-query -W -f '${Version}' "$srcpkg" 2>/dev/null || true)
if [ -n "$hdr_ver" ] && [ "$hdr_ver" != "$src_ver" ]; then
	[ "${IPVS_BPF_ALLOW_SRC_MISMATCH:-0}" = 1 ] ||
		die "$srcpkg is '$src_ver' but linux-headers-$kver is '$hdr_ver'" \
		    "($fix $srcpkg=$hdr_ver, or set IPVS_BPF_ALLOW_SRC_MISMATCH=1)"
	log "warning: $srcpkg $src_ver != headers $hdr_ver"
fi

abi=${IPVS_BPF_ABI_HEADER:-}
if [ -z "$abi" ]; then
	for c in "$here/ipvs_bpf_abi.h" "$here/../bpf/include/ipvs_bpf_abi.h"; do
		[ -f "$c" ] && { abi=$c; break; }
	done
fi
[ -n "$abi" ] && [ -f "$abi" ] || die "map ABI header ipvs_bpf_abi.h not found"

# patches-<series>/ holds only what differs for that series: replacements (same name) and additions.
shopt -s nullglob
names=()
for f in "$here"/patches/*.patch "$here/patches-$series"/*.patch; do names+=("${f##*/}"); done
shopt -u nullglob
patches=()
for n in $(printf '%s\n' "${names[@]}" | sort -u); do
	if [ -f "$here/patches-$series/$n" ]; then
		patches+=("$here/patches-$series/$n")
	else
		patches+=("$here/patches/$n")
	fi
done
[ ${#patches[@]} -gt 0 ] || die "no patches in $here/patches"

hash=$( { cat "${patches[@]}" "$abi" "$here/Kbuild.top" "$0";
	  echo "src=$src_ver tarball=$(stat -c %s "$tarball")"; } |
	sha256sum | cut -c1-16)
cache=${IPVS_BPF_KMOD_CACHE:-/var/cache/ipvs-bpf/kmod}
entry=$cache/$kver-$hash
mkdir -p "$cache"

exec 9>"$cache/.lock"
flock 9

want_stamp="kver=$kver hash=$hash"
if [ $force = 1 ] || [ ! -f "$entry/stamp" ] || [ "$(cat "$entry/stamp")" != "$want_stamp" ]; then
	rm -rf "$entry" "$entry.tmp"
	tmp=$entry.tmp
	mkdir -p "$tmp/x"
	log "extracting IPVS sources from $tarball"
	top=$(tar -tJf "$tarball" 2>/dev/null | head -n1 | cut -d/ -f1) || true
	[ -n "$top" ] || die "cannot read $tarball"
	tar -xJf "$tarball" -C "$tmp/x" \
		"$top/net/netfilter/ipvs" "$top/net/netfilter/xt_ipvs.c" \
		"$top/include/net/ip_vs.h"
	mv "$tmp/x/$top" "$tmp/src"
	rmdir "$tmp/x"
	cp "$here/Kbuild.top" "$tmp/src/Kbuild"
	cp "$abi" "$tmp/src/include/net/ipvs_bpf_abi.h"
	for p in "${patches[@]}"; do
		log "applying ${p#"$here"/}"
		# no fuzz: a hunk whose context moved between series must fail, not land elsewhere
		patch -d "$tmp/src" -p1 --batch --forward --quiet --fuzz=0 < "$p" ||
			die "${p#"$here"/} does not apply to $srcpkg $src_ver (series: 6.1, and 6.12 with patches-6.12/)"
	done
	log "building against $kdir"
	make -C "$kdir" M="$tmp/src" -j"$(nproc)" modules > "$tmp/build.log" 2>&1 ||
		{ tail -n 40 "$tmp/build.log" >&2; die "build failed (log: $tmp/build.log)"; }
	grep -E 'warning:' "$tmp/build.log" >&2 || true
	mv "$tmp" "$entry"
	echo "$want_stamp" > "$entry/stamp"
fi

mapfile -t kos < <(cd "$entry/src" && find . -name '*.ko' | sort)
[ ${#kos[@]} -gt 0 ] || die "no modules in $entry"
log "$entry: ${#kos[@]} modules"
if [ -n "$out" ]; then
	mkdir -p "$out"
	for k in "${kos[@]}"; do cp "$entry/src/$k" "$out/"; done
fi
[ $print_dir = 0 ] || echo "$entry/src"
