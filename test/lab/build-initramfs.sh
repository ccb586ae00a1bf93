#!/usr/bin/env bash
# Build (or reuse) the lab VM's initramfs for a kernel prepared by prepare-kernel.sh, and print
# LAB_INITRAMFS=<path> on stdout. Contents: busybox-static, /init (init.sh) and the virtio/9p/overlay modules
# of that kernel. The file is named by a hash of everything that goes into it, so a change of init.sh, of
# this script, of busybox or of the kernel entry gives a new file and an unchanged one is reused.
#
# Needs the variables printed by prepare-kernel.sh: LAB_KDIR, LAB_KVER, LAB_MODULES_DIR.
set -euo pipefail
die() { echo "build-initramfs: $*" >&2; exit 1; }
: "${LAB_KDIR:?}" "${LAB_KVER:?}" "${LAB_MODULES_DIR:?}"
here=$(cd "$(dirname "$0")" && pwd)

# Load order matters: each module's dependencies come before it.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
         9pnet 9pnet_virtio netfs fscache 9p overlay)

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && file -L "$b" 2>/dev/null | grep -q 'statically linked'; then busybox=$b; break; fi
done
if [ -z "$busybox" ]; then
  # `file` may be absent: a static busybox from busybox-static is what Debian installs at /bin/busybox.
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
    die "needs a static busybox: apt-get install busybox-static"
  busybox=/bin/busybox
fi
command -v cpio >/dev/null || die "needs cpio: apt-get install cpio"

key=$( { sha256sum "$here/init.sh" "$here/build-initramfs.sh" "$busybox" | cut -d' ' -f1
         cat "$LAB_KDIR/stamp"; echo "${MODULES[*]}"; } | sha256sum | cut -c1-16)
out=$LAB_KDIR/initramfs-$key.cpio
if [ -s "$out" ]; then echo "LAB_INITRAMFS=$out"; exit 0; fi

exec 9>"$LAB_KDIR/.initramfs.lock"
flock 9
if [ -s "$out" ]; then echo "LAB_INITRAMFS=$out"; exit 0; fi

stage=$(mktemp -d "$LAB_KDIR/.initramfs-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lab/modules}
cp "$busybox" "$stage/bin/busybox"
cp "$here/init.sh" "$stage/init"
chmod 755 "$stage/init" "$stage/bin/busybox"
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true   # init reopens it from devtmpfs anyway
for m in "${MODULES[@]}"; do
  path=$(sed -n "s|^\(.*/$m\.ko\):.*|\1|p" "$LAB_MODULES_DIR/modules.dep" | head -n1)
  [ -n "$path" ] || die "module $m not found in $LAB_MODULES_DIR/modules.dep"
  cp "$LAB_MODULES_DIR/$path" "$stage/lab/modules/$m.ko"
  echo "$m" >>"$stage/lab/modules.order"
done
(cd "$stage" && find . -mindepth 1 | sort | cpio -o -H newc --owner=0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
echo "LAB_INITRAMFS=$out"
