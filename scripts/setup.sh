#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian bookworm machine: Debian packages, npm ci, build.
# Used by `npm test`, `npm run demo` and the benchmarks, so each works from a clean clone.
# Installs the headers and sources of both lab kernels (6.1 and 6.12; LAB_KERNEL_PKG pins one image instead).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*" >&2; }

# The packages of every external command the scripts and tests run (scripts/commands.tsv; a unit test keeps
# that file complete), and the libraries the builds link.
mapfile -t APT_PKGS < <(awk -F'\t' '!/^#/ && NF == 3 && $2 != "npm" && $2 != "node" && $2 != "go" { print $2 }' scripts/commands.tsv | sort -u)
((${#APT_PKGS[@]} > 10)) || { say "scripts/commands.tsv lists no packages"; exit 1; }

# The patched IPVS modules (kernel-patch/build.sh) build against the lab VM's kernel: its headers and the
# linux-source of its series, both at the image's exact Debian version. scripts/lab-kernel.sh resolves it
# (refreshing stale package lists first), the same resolver the lab VM and the patch build use. Both lab
# kernels: the suite runs the BPF end-to-end test on each (LAB_KERNEL picks the one the other tests boot).
PINNED=()
for series in 6.1 6.12; do
  kernel=$(LAB_KERNEL=$series bash scripts/lab-kernel.sh) ||
    { say "cannot resolve the lab kernel $series (see above)"; exit 1; }
  kv() { sed -n "s/^$1=//p" <<<"$kernel"; }
  kver=$(kv LAB_KPKG_VERSION)
  for p in "$(kv LAB_KHEADERS_PKG)=$kver" "$(kv LAB_KSOURCE_PKG)=$kver"; do
    [[ " ${PINNED[*]} " == *" $p "* ]] || PINNED+=("$p")
  done
done

installed() { # $1 = package, $2 = wanted version (optional)
  local st
  st=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) || return 1
  case "$st" in "install ok installed "*) ;; *) return 1 ;; esac
  [ -z "${2:-}" ] || [ "${st##* }" = "$2" ]
}
missing=()
for p in "${APT_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${PINNED[@]}"; do installed "${p%%=*}" "${p#*=}" || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then say "need root to install packages (run 'bash scripts/setup.sh' as root)"; exit 1; fi
  # Lab VMs run on this host's root over 9p and hold this lock shared (test/lab/vm.ts HOST_PACKAGES_LOCK):
  # packages change only while no VM runs.
  exec 8>/run/lock/ipvs-bpf-host-packages.lock
  if ! flock -x -n 8; then say "waiting for running lab VMs to end before changing packages"; flock -x 8; fi
  inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades \
             -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null; }
  if ! inst; then
    say "apt-get install failed; refreshing the package lists once and retrying"
    apt-get update -qq -o DPkg::Lock::Timeout=600
    inst
  fi
  exec 8>&-
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
else
  npm run --silent build >&2
fi
