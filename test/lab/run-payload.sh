#!/bin/bash
# Runs inside the lab VM (both modes), as root: loads the run's extra modules, runs the payload with the
# contract's environment and working directory, and writes its exit status to the run share.
#   $1 = the run dir (read-write 9p share, same path as on the host)
#   $2 = "pid1" in shell mode, where this script is PID 1 and powers the VM off at the end
# Files in the run dir: env.sh (exports), payload.sh, extra-modules (one .ko path a line, optional).
# Writes: status (exit code, written last via rename), timing (VM uptime at payload start/end), and on a
# set-up failure setup-error.
run=$1
pid1=${2:-}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8

finish() { # $1 = exit status of the payload
  echo "$1" >"$run/status.tmp" && mv -f "$run/status.tmp" "$run/status"
  sync
  if [ "${2:-}" = pid1 ]; then
    # Power off now (there is no init system to ask): busybox (from the host's busybox-static) calls
    # reboot(2) directly; the sysrq trigger is the fallback.
    /bin/busybox poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
    sleep 30
  fi
}
setup_failed() {
  echo "lab: $*" >&2
  echo "$*" >"$run/setup-error"
  finish 255 "$pid1"
  exit 0
}

# Extra modules replace the stock ones of the same name: an install rule makes every later modprobe of that
# name (also as another module's dependency) load the dependencies first and then insmod the given file.
if [ -s "$run/extra-modules" ]; then
  conf=/etc/modprobe.d/lab-extra-modules.conf
  mkdir -p /etc/modprobe.d
  : >"$conf"
  names=()
  while IFS= read -r ko; do
    [ -n "$ko" ] || continue
    [ -f "$ko" ] || setup_failed "extra module $ko: no such file"
    name=$(modinfo -F name "$ko" 2>/dev/null)
    [ -n "$name" ] || name=$(basename "$ko" .ko | tr - _)
    deps=$(modinfo -F depends "$ko" 2>/dev/null | tr , ' ')
    pre=""
    for d in $deps; do pre="$pre/sbin/modprobe $d && "; done
    echo "install $name $pre/sbin/insmod $ko \$CMDLINE_OPTS" >>"$conf"
    names+=("$name")
  done <"$run/extra-modules"
  for name in "${names[@]}"; do
    if grep -q "^$name " /proc/modules; then
      setup_failed "extra module $name: a module of that name is already loaded"
    fi
    modprobe "$name" || setup_failed "extra module $name: loading failed (see the console)"
  done
fi

# The user-network device (only when the run has guest forwards: net.conf): found by its MAC (udev may have
# renamed it in systemd mode), named LAB_NET_IF, given LAB_NET_ADDR; exported to the payload.
if [ -s "$run/net.conf" ]; then
  # shellcheck disable=SC1091
  . "$run/net.conf"   # LAB_NET_IF LAB_NET_MAC LAB_NET_ADDR
  modprobe virtio_net 2>/dev/null || true   # built in on 6.12
  dev=
  for i in $(seq 50); do
    for a in /sys/class/net/*/address; do
      [ "$(cat "$a" 2>/dev/null)" = "$LAB_NET_MAC" ] && dev=$(basename "$(dirname "$a")")
    done
    [ -n "$dev" ] && break
    sleep 0.1
  done
  [ -n "$dev" ] || setup_failed "no network device with MAC $LAB_NET_MAC (virtio_net)"
  if [ "$dev" != "$LAB_NET_IF" ]; then
    ip link set dev "$dev" down && ip link set dev "$dev" name "$LAB_NET_IF" || setup_failed "cannot rename $dev to $LAB_NET_IF"
  fi
  ip addr add "$LAB_NET_ADDR" dev "$LAB_NET_IF" && ip link set dev "$LAB_NET_IF" up ||
    setup_failed "cannot configure $LAB_NET_IF ($LAB_NET_ADDR)"
  export LAB_NET_IF LAB_NET_ADDR
fi

set -a
# shellcheck disable=SC1091
. "$run/env.sh"
set +a
cd "$LAB_CHECKOUT" || setup_failed "cannot cd to $LAB_CHECKOUT"

read -r t0 _ </proc/uptime
bash "$run/payload.sh" </dev/null
rc=$?
read -r t1 _ </proc/uptime
echo "boot_to_payload_s=$t0 payload_s=$(awk "BEGIN{print $t1-$t0}")" >"$run/timing"
finish "$rc" "$pid1"
