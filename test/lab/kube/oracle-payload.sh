#!/bin/bash
# Lab-VM payload of the kube-proxy oracle (test/lab/kube/oracle.ts): the node's addresses, the IPVS state the
# node starts with, then real `kube-proxy --proxy-mode=ipvs` against the test apiserver (reached through the
# VM's guest forward), one complete sync per IP family, and what it programmed, into $LAB_OUT:
#   kube-proxy.ipvs      ipvsadm -Sn             kube-proxy.timeouts  ipvsadm -L --timeout
#   kube-proxy.addrs     addresses of kube-ipvs0 kube-proxy.ipsets    ipset names
#   kube-proxy.sysctl    the sysctls it sets     kube-proxy.metrics   /metrics  kube-proxy.healthz  /healthz
#   kube-proxy.log       its log                 kube-proxy.iptables  iptables-save and ip6tables-save
#   timing               seconds from its start to the table, and of the whole payload
# Then `kube-proxy --cleanup`, the node's starting IPVS state again, and $KUBE_THEN (optional, sourced: it may
# call `record_tables NAME` and `wait_ipvs_stable`) for whatever runs next on the same node.
# Environment (from oracle.ts): KUBE_PROXY (binary), KUBE_PROXY_CONFIG (KubeProxyConfiguration file),
# KUBE_NODE_ADDRS (lines "dev cidr"; a dev other than $LAB_NET_IF is made a dummy), KUBE_IPVS_BEFORE
# (ipvsadm -R input), KUBE_FAMILIES (number of IP families to wait for: 1 or 2), KUBE_SYNC_TIMEOUT_S.
set -euo pipefail
out=$LAB_OUT
t_start=$(cut -d' ' -f1 /proc/uptime)
log() { echo "kube-oracle: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

# Real IPVS and the schedulers a KubeProxyConfiguration may name; conntrack for kube-proxy's iptables rules.
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_sh ip_vs_mh nf_conntrack

while read -r dev cidr; do
  [ -n "$dev" ] || continue
  [ -e "/sys/class/net/$dev" ] || { ip link add "$dev" type dummy && ip link set "$dev" up; }
  ip addr add "$cidr" dev "$dev" nodad 2>/dev/null || ip addr add "$cidr" dev "$dev"
done <"$KUBE_NODE_ADDRS"
ipvsadm -R <"$KUBE_IPVS_BEFORE"

# GET on a loopback HTTP port with bash's /dev/tcp (no client binary to start under TCG).
http_get() { # $1 = port, $2 = path
  local body
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
  body=$(cat <&3) || true
  exec 3<&-
  printf '%s\n' "${body#*$'\r\n\r\n'}"
}

# kube-proxy has synced every family when each sync_proxy_rules_last_timestamp_seconds series is set, no
# sync is queued after it, and no change is pending.
synced() { # $1 = metrics text, $2 = families wanted
  awk -v want="$2" '
    /^kubeproxy_sync_proxy_rules_last_timestamp_seconds/ { last[$1 ~ /IPv6/ ? 6 : 4] = $2 + 0 }
    /^kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds/ { queued[$1 ~ /IPv6/ ? 6 : 4] = $2 + 0 }
    /^kubeproxy_sync_proxy_rules_(endpoint|service)_changes_pending/ { pending += $2 }
    END {
      n = 0
      for (f in last) if (last[f] > 0 && last[f] >= queued[f]) n++
      exit !(n >= want && pending == 0)
    }' <<<"$1"
}

record_tables() { # $1 = name prefix of the files in $LAB_OUT
  ipvsadm -Sn >"$out/$1.ipvs"
  ipvsadm -Ln --timeout >"$out/$1.timeouts"
  if [ -e /sys/class/net/kube-ipvs0 ]; then ip -o addr show dev kube-ipvs0 >"$out/$1.addrs"; else : >"$out/$1.addrs"; fi
}

# The table is complete when it no longer changes for 2 s (one sync may still be running).
wait_ipvs_stable() {
  local a b
  a=$(ipvsadm -Sn)
  for _ in $(seq 30); do
    sleep 2
    b=$(ipvsadm -Sn)
    [ "$a" = "$b" ] && return 0
    a=$b
  done
  log "the IPVS table kept changing"
  return 1
}

log "starting kube-proxy"
t_kp=$(now)
"$KUBE_PROXY" --config="$KUBE_PROXY_CONFIG" --v=2 >"$out/kube-proxy.log" 2>&1 &
kp=$!
deadline=$(( $(date +%s) + ${KUBE_SYNC_TIMEOUT_S:-180} ))
until m=$(http_get 10249 /metrics 2>/dev/null) && synced "$m" "${KUBE_FAMILIES:-2}"; do
  if ! kill -0 "$kp" 2>/dev/null; then
    log "kube-proxy exited before its first sync; its log ends:"; tail -n 30 "$out/kube-proxy.log"; exit 1
  fi
  if (( $(date +%s) > deadline )); then
    log "kube-proxy did not sync ${KUBE_FAMILIES:-2} families in ${KUBE_SYNC_TIMEOUT_S:-180} s; its log ends:"
    tail -n 30 "$out/kube-proxy.log"; printf '%s\n' "${m:-}" | grep '^kubeproxy_sync' || true; exit 1
  fi
  sleep 1
done
t_synced=$(now)
wait_ipvs_stable
record_tables kube-proxy
ipset list -n | sort >"$out/kube-proxy.ipsets"
for s in net.ipv4.vs.conntrack net.ipv4.vs.expire_nodest_conn net.ipv4.vs.expire_quiescent_template \
         net.ipv4.vs.conn_reuse_mode net.ipv4.ip_forward net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce \
         net.ipv4.conf.all.route_localnet; do
  sysctl -e "$s"
done >"$out/kube-proxy.sysctl"
http_get 10249 /metrics >"$out/kube-proxy.metrics" || true
http_get 10256 /healthz >"$out/kube-proxy.healthz" || true
{ iptables-save; ip6tables-save; } >"$out/kube-proxy.iptables" 2>&1 || true
log "kube-proxy synced in $(awk "BEGIN{print $t_synced-$t_kp}") s"

kill "$kp"; wait "$kp" || true
"$KUBE_PROXY" --cleanup --config="$KUBE_PROXY_CONFIG" >>"$out/kube-proxy.log" 2>&1 || log "kube-proxy --cleanup failed (see kube-proxy.log)"
ipvsadm -C
ip link del kube-ipvs0 2>/dev/null || true
ipvsadm -R <"$KUBE_IPVS_BEFORE"

if [ -n "${KUBE_THEN:-}" ]; then
  log "running $KUBE_THEN"
  # shellcheck disable=SC1090
  . "$KUBE_THEN"
fi
echo "kube_proxy_sync_s=$(awk "BEGIN{print $t_synced-$t_kp}") payload_s=$(awk "BEGIN{print $(now)-$t_start}")" >"$out/timing"
