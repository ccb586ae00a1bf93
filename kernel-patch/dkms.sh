#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install or remove the patched IPVS modules with DKMS (Debian's dkms package)
# for one kernel, from this checkout:
#   dkms.sh install [--kver <release>]  stage /usr/src/ipvs-bpf-<version>/
#                                       (dkms-stage.sh), dkms add (once), then
#                                       dkms build and install for the kernel
#   dkms.sh build [--kver <release>]    the same without the install: the modules
#                                       stay in /var/lib/dkms/ipvs-bpf/<version>/
#                                       <release>/<arch>/module/ (tests load them)
#   dkms.sh remove [--kver <release>]   dkms remove for that kernel
#   dkms.sh remove --all                from every kernel, and the staged source
#   dkms.sh status                      dkms status of the module
# --kver defaults to the running kernel (uname -r). The kernel needs its
# linux-headers-<release> and the linux-source-<series> of the same Debian
# version (kernel-patch/README.md, Build). dkms installs the modules under
# /lib/modules/<release>/updates/dkms/, which depmod prefers to the stock ones
# in kernel/; `modprobe ip_vs` then loads the patched module.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "kernel-patch/dkms: $*" >&2; exit 1; }
log() { echo "kernel-patch/dkms: $*" >&2; }

cmd=${1:-}
[ $# -gt 0 ] && shift
kver=$(uname -r)
all=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) kver=${2:?--kver needs a value}; shift 2 ;;
	--all) all=1; shift ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
case "$cmd" in
install|build|remove|status) ;;
-h|--help|'') sed -n '3,19p' "$0"; [ -n "$cmd" ]; exit ;;
*) die "unknown command '$cmd' (install, build, remove or status)" ;;
esac

command -v dkms >/dev/null || die "dkms not found (Debian package dkms; bash scripts/setup.sh installs it)"
[ "$(id -u)" = 0 ] || die "needs root (dkms writes /usr/src, /var/lib/dkms and /lib/modules)"
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"/\1/p' "$here/dkms.conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms.conf")
[ -n "$name" ] && [ -n "$ver" ] || die "no PACKAGE_NAME/PACKAGE_VERSION in $here/dkms.conf"
mv_=$name/$ver

added() { [ -n "$(dkms status -m "$name" -v "$ver" 2>/dev/null)" ]; }

# One staging and dkms run at a time (two checkouts would otherwise stage /usr/src/<name>-<ver> at once).
exec 9>/run/lock/ipvs-bpf-dkms.lock
flock 9

case "$cmd" in
status)
	dkms status -m "$name"
	;;
install|build)
	[ -f "/lib/modules/$kver/build/Makefile" ] || [ -f "/usr/src/linux-headers-$kver/Makefile" ] ||
		die "no headers for $kver (apt-get install linux-headers-$kver)"
	src=$(bash "$here/dkms-stage.sh")
	log "staged $src"
	added || dkms add -m "$name" -v "$ver"
	# --force: the staged source may have changed since the last build of this version
	log "dkms build $mv_ -k $kver"
	dkms build -m "$name" -v "$ver" -k "$kver" --force
	if [ "$cmd" = build ]; then
		echo "/var/lib/dkms/$name/$ver/$kver/$(uname -m)/module"
		exit 0
	fi
	log "dkms install $mv_ -k $kver"
	dkms install -m "$name" -v "$ver" -k "$kver" --force
	dkms status -m "$name" -v "$ver" -k "$kver"
	;;
remove)
	if [ $all = 1 ]; then
		if added; then dkms remove -m "$name" -v "$ver" --all; fi
		rm -rf "/usr/src/$name-$ver"
	else
		added || die "$mv_ is not added to dkms"
		dkms remove -m "$name" -v "$ver" -k "$kver"
	fi
	;;
esac
