#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian bookworm machine: Debian packages, npm ci, build.
# Used by `npm test`, `npm run demo` and the benchmarks, so each works from a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(qemu-system-x86 busybox-static cpio kmod ipvsadm iproute2 iptables conntrack
          clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config xz-utils
          netcat-openbsd socat bc ethtool)
# The patched IPVS modules (kernel-patch/build.sh) build against the lab VM's kernel: the headers of the
# release linux-image-amd64 depends on now (its ABI number moves with security updates) and the matching
# linux-source-6.1. Resolved from the local package lists; refreshed once if they do not know it.
kernel_release() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*\)$/\1/p' | head -n1
}
kver=$(kernel_release)
if [ -z "$kver" ] && [ "$(id -u)" = 0 ]; then apt-get update -qq; kver=$(kernel_release); fi
[ -n "$kver" ] || { echo "setup: cannot resolve linux-image-amd64's kernel (apt-get update?)" >&2; exit 1; }
APT_PKGS+=("linux-headers-$kver" linux-source-6.1)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install packages" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
else
  npm run --silent build >&2
fi
