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

# What the initramfs needs (virtio PCI, 9p over virtio, overlayfs); their dependencies are taken from the
# kernel's modules.dep and loaded first. Built-in ones are skipped: 6.12 builds virtio in, 6.1 has it as
# modules, 6.12 has no fscache module (merged into netfs) and compresses modules with xz.
MODULES=(virtio_pci 9pnet_virtio 9p overlay)

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
declare -A added=()
add_module() { # $1 = module path as in modules.dep (kernel/.../name.ko[.xz|.zst]); its dependencies first
  local path=$1 name deps d
  name=$(basename "$path"); name=${name%%.ko*}
  [ -z "${added[$name]:-}" ] || return 0
  added[$name]=1
  deps=$(grep -m1 "^$path:" "$LAB_MODULES_DIR/modules.dep" | cut -d: -f2)
  # modules.dep lists a module's dependencies nearest first: load them from the end
  for d in $(echo $deps | tr ' ' '\n' | tac); do add_module "$d"; done
  case "$path" in
    *.ko) cp "$LAB_MODULES_DIR/$path" "$stage/lab/modules/$name.ko" ;;
    *.ko.xz) xz -dc "$LAB_MODULES_DIR/$path" >"$stage/lab/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$LAB_MODULES_DIR/$path" >"$stage/lab/modules/$name.ko" ;;
    *) die "module $path: unknown compression" ;;
  esac
  echo "$name" >>"$stage/lab/modules.order"
}
for m in "${MODULES[@]}"; do
  path=$(grep -m1 -E "^([^:]*/)?$m\.ko(\.xz|\.zst)?:" "$LAB_MODULES_DIR/modules.dep" | cut -d: -f1 || true)
  if [ -z "$path" ]; then
    grep -qE "/$m\.ko\$" "$LAB_MODULES_DIR/modules.builtin" 2>/dev/null && continue
    die "module $m is neither in modules.dep nor built in ($LAB_MODULES_DIR)"
  fi
  add_module "$path"
done
(cd "$stage" && find . -mindepth 1 | sort | cpio -o -H newc --owner=0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
echo "LAB_INITRAMFS=$out"
