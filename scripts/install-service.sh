#!/usr/bin/env bash
# Installs ipvs-bpf as a systemd service on a Debian host (as root), from this checkout:
#   /usr/local/lib/ipvs-bpf/                               the runtime: a copy of bin/, dist/src, the BPF objects,
#                                                          the addon and the production node_modules
#   /usr/local/sbin/ipvs-bpf, /usr/local/bin/ipvs-bpfctl   launchers running that copy with node
#   /etc/systemd/system/ipvs-bpf.service                   the unit (systemd/ipvs-bpf.service)
#   /etc/dbus-1/system.d/org.ipvsbpf1.conf                 the D-Bus policy (generated from src/daemon/dbus-api.ts)
#   group ipvs-bpf                                         who may list flows over D-Bus besides root
#   /etc/ipvs-bpf/config.json, /etc/ipvs-bpf/rules         defaults, only where absent (never overwritten)
# Options: --enable (also `systemctl enable`), --start (enable and start now), --prefix DIR (default /usr/local).
# The checkout must be built (npm ci / npm run build). The service runs a copy, never the checkout: a checkout
# may live where the unit cannot see it (PrivateTmp hides /tmp and /var/tmp) or change under a running daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
prefix=/usr/local
enable=no
start=no
while [ $# -gt 0 ]; do
  case $1 in
    --enable) enable=yes ;;
    --start) enable=yes; start=yes ;;
    --prefix) prefix=$2; shift ;;
    *) echo "install-service: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "install-service: run as root" >&2; exit 1; }
[ -f dist/src/daemon/main.js ] || { echo "install-service: not built (run npm ci or npm run build first)" >&2; exit 1; }
node=$(command -v node) || { echo "install-service: node not found" >&2; exit 1; }

# The runtime copy, replaced as a whole (a new directory renamed over the old one).
lib=$prefix/lib/ipvs-bpf
stage=$lib.new.$$
rm -rf "$stage"
install -d -m 0755 "$stage"
cp -a package.json bin "$stage/"
install -d "$stage/dist" "$stage/native/build/Release" "$stage/build"
cp -a dist/src "$stage/dist/"
cp -a native/build/Release/ipvs_bpf.node "$stage/native/build/Release/"
cp -a build/bpf "$stage/build/"
# Production dependencies only, nested ones included (what `npm ls --omit=dev --parseable --all` lists;
# prod-deps.js reads the package.json files instead of loading npm: 70-100 s less in the lab VM).
# One cp for all of them (a process costs 0.1-0.4 s under TCG; two per package were ~120 processes): the
# top-most directories only, a nested one comes with its parent (the list is sorted, parents first).
deps=$(node scripts/prod-deps.js)
here=$(pwd -P)
tops=()
while IFS= read -r dir; do
  rel=${dir#"$here"/}
  case $rel in
    node_modules/*) ;;
    /*) echo "install-service: $dir is outside $here" >&2; exit 1 ;;
    *) continue ;;
  esac
  for top in "${tops[@]}"; do [[ $rel == "$top"/* ]] && continue 2; done
  tops+=("$rel")
done <<<"$deps"
[ ${#tops[@]} -eq 0 ] || cp -a --parents "${tops[@]}" "$stage/"
rm -rf "$lib.old"
[ -e "$lib" ] && mv "$lib" "$lib.old"
mv "$stage" "$lib"
rm -rf "$lib.old"

launcher() { # $1 = file, $2 = bin/ script
  install -d -m 0755 "$(dirname "$1")"
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$lib/bin/$2" >"$1.tmp"
  chmod 0755 "$1.tmp"
  mv -f "$1.tmp" "$1"
}
launcher "$prefix/sbin/ipvs-bpf" ipvs-bpf
launcher "$prefix/bin/ipvs-bpfctl" ipvs-bpfctl

sed "s|@LAUNCHER@|$prefix/sbin/ipvs-bpf|" systemd/ipvs-bpf.service >/etc/systemd/system/ipvs-bpf.service.tmp
mv -f /etc/systemd/system/ipvs-bpf.service.tmp /etc/systemd/system/ipvs-bpf.service
# Members of this group may call ListFlows (flow tuples are client addresses); the policy names it, and
# dbus-daemon resolves the name when it loads the policy, so the group comes first.
getent group ipvs-bpf >/dev/null || groupadd --system ipvs-bpf
install -D -m 0644 systemd/org.ipvsbpf1.conf /etc/dbus-1/system.d/org.ipvsbpf1.conf
install -d -m 0755 /etc/ipvs-bpf
[ -e /etc/ipvs-bpf/config.json ] || install -m 0644 systemd/config.json /etc/ipvs-bpf/config.json
[ -e /etc/ipvs-bpf/rules ] || install -m 0644 systemd/rules /etc/ipvs-bpf/rules

systemctl daemon-reload
# dbus-daemon reads system.d at start and on reload; a running bus needs the reload to accept the name.
if systemctl is-active --quiet dbus.service; then
  busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null ||
    systemctl reload dbus.service
fi
[ $enable = yes ] && systemctl enable --quiet ipvs-bpf.service
[ $start = yes ] && systemctl restart ipvs-bpf.service
echo "installed: ipvs-bpf.service (launcher $prefix/sbin/ipvs-bpf -> $lib), policy, /etc/ipvs-bpf"
