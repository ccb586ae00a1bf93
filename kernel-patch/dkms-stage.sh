#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Stage the DKMS source tree /usr/src/ipvs-bpf-<version>/ from this checkout:
# build.sh, Kbuild.top, patches/ (and patches-<series>/), dkms.conf and the map ABI header.
# Usage: dkms-stage.sh [destination root, default /usr/src]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$here/dkms.conf")
dst=${1:-/usr/src}/ipvs-bpf-$ver
rm -rf "$dst"
mkdir -p "$dst/patches"
cp "$here/build.sh" "$here/Kbuild.top" "$here/dkms.conf" "$dst/"
cp "$here"/patches/*.patch "$dst/patches/"
for d in "$here"/patches-*/; do
	mkdir -p "$dst/$(basename "$d")"
	cp "$d"*.patch "$dst/$(basename "$d")/"
done
cp "$here/../bpf/include/ipvs_bpf_abi.h" "$dst/ipvs_bpf_abi.h"
echo "$dst"
