#!/bin/bash
# The demo inside the lab VM. This host is the load balancer (VIP 10.0.0.100, the shared topology of
# test/lab/topology.sh): a client namespace -> the VIP -> two real-server namespaces. The daemon
# bin/ipvs-bpf runs as a user would run it, from a configuration file: mode $DEMO_MODE (bpf: the patched
# IPVS + tc/XDP data path, SNAT 10.9.0.1; ipvs: plain IPVS NAT + iptables MASQUERADE, the conntrack-based
# equivalent), the rules of examples/demo.rules.
# Results for the host go to $LAB_OUT: client.json, nf_conntrack_count, conntrack_control, datapath.json.
set -euo pipefail
say() { printf '\n== %s\n' "$*"; }
MODE=${DEMO_MODE:-bpf}
REQUESTS=${DEMO_REQUESTS:-200}
CONCURRENCY=${DEMO_CONCURRENCY:-4}
CONF_DIR=/run/ipvs-bpf-demo
# shellcheck source=../lab/topology.sh
source test/lab/topology.sh

# node and the daemon's modules come over 9p, slowly the first time: read them in the background now
node -e 'for (const m of process.argv.slice(1)) require(m)' "$PWD/dist/src/daemon/main.js" "$PWD/dist/src/bpf/loader.js" \
  "$PWD/dist/src/bpf/attach.js" "$PWD/dist/src/bpf/flows.js" >/dev/null 2>&1 &
modprobe ip_vs
modprobe ip_vs_rr
say "kernel $(uname -r); IPVS: $([ -e /proc/net/ip_vs_bpf ] && echo 'patched (BPF mode available)' || echo stock)"
topo_up
# the XDP fast path rewrites with incremental checksum updates: veths must hand over complete checksums
[ "$MODE" = bpf ] && topo_tx_csum_off

# conntrack must be live in the LB's netns for "0 entries" to mean anything: a FORWARD rule that asks for
# it (harmless: ACCEPT is the policy anyway), then one UDP datagram to the LB itself must create an entry
# (UDP: a TCP probe answered by a reset is deleted from the table at once).
iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
ip netns exec client bash -c 'echo probe >/dev/udp/10.1.0.1/9' || true
sleep 0.5
control=$(topo_conntrack_count)
echo "$control" >"$LAB_OUT/conntrack_control"
say "nf_conntrack is active in the LB netns: $control entry(s) after one UDP datagram to the LB; flushing them"
conntrack -F >/dev/null 2>&1 || true
if [ "$MODE" = ipvs ]; then
  # the plain equivalent of bpf mode's SNAT: IPVS NAT + iptables MASQUERADE towards the real servers, which
  # needs IPVS to keep conntrack (net.ipv4.vs.conntrack=1, as kube-proxy's IPVS mode sets it)
  say "plain comparison: net.ipv4.vs.conntrack=1 + MASQUERADE towards the real servers"
  sysctl -w net.ipv4.vs.conntrack=1
  iptables -t nat -A POSTROUTING -d 10.2.0.0/16 -j MASQUERADE
fi

say "starting the real servers (node, HTTP on :8080 in be1, be2)"
for i in 1 2; do
  ip netns exec "be$i" node test/demo/backend.js "be$i" 8080 >"$LAB_OUT/be$i.log" 2>&1 &
done

mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/config.json" <<EOF
{
  "mode": "$MODE",
  "interfaces": ["c-lb", "b1-lb", "b2-lb"],
  "snat": { "addresses": ["$TOPO_SNAT"] },
  "rules": ["$PWD/examples/demo.rules"],
  "dbus": { "bus": "none" },
  "statusInterval": 2
}
EOF
say "ipvs-bpf --config $CONF_DIR/config.json"
cat "$CONF_DIR/config.json"
./bin/ipvs-bpf --config "$CONF_DIR/config.json" >"$LAB_OUT/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 1 600); do
  grep -q 'ready' "$LAB_OUT/daemon.log" && break
  kill -0 "$daemon" 2>/dev/null || { cat "$LAB_OUT/daemon.log"; echo "demo: the daemon exited before it was ready" >&2; exit 1; }
  sleep 0.2
done
grep -q 'ready' "$LAB_OUT/daemon.log" || { cat "$LAB_OUT/daemon.log"; echo "demo: the daemon did not get ready" >&2; exit 1; }
sed 's/^/  daemon: /' "$LAB_OUT/daemon.log"
# the namespace ends of the veths take the frames the LB's XDP program redirects into them
[ "$MODE" = bpf ] && topo_xdp_peers
./bin/ipvs-bpfctl -Ln
sysctl net.ipv4.vs.bpf_mode 2>/dev/null || true

for i in 1 2; do topo_wait_listen "be$i" tcp 8080; done

say "client: $REQUESTS HTTP requests to $TOPO_VIP:80, $CONCURRENCY at a time, one connection each"
ip netns exec client node test/demo/client.js "$TOPO_VIP" 80 "$REQUESTS" "$CONCURRENCY" | tee "$LAB_OUT/client.json"

# a failed request: what the LB knows about its client port
for p in $(grep -o '"port":[0-9]*' "$LAB_OUT/client.json" | cut -d: -f2 | sort -u); do
  [ "$p" = 0 ] && continue
  [ -z "${nstat_done:-}" ] && for ns in client be1 be2; do
    echo "$ns: $(ip netns exec "$ns" nstat -az 2>/dev/null | awk '$2 != 0 && /Retrans|Drop|Reset|Abort|Timeout|Challenge/ {printf "%s=%s ", $1, $2}')"
  done && nstat_done=1
  echo "failed request from client port $p:"
  ipvsadm -Lnc | grep ":$p " || echo "  no IPVS connection"
  [ "$MODE" = bpf ] && bpftool map dump pinned /sys/fs/bpf/ipvs-bpf/ipvs_ct_v1 2>/dev/null |
    grep -c "$(printf '%02x %02x' $((p >> 8)) $((p & 255)))" | sed 's/^/  map lines with the port bytes: /'
done

say "ipvs-bpfctl -Ln --stats"
./bin/ipvs-bpfctl -Ln --stats
say "IPVS connections (ipvsadm -Lnc, first 8 of $(ipvsadm -Lnc | tail -n +3 | wc -l))"
ipvsadm -Lnc | sed -n 1,10p

if [ "$MODE" = bpf ]; then
  say "patched IPVS: /proc/net/ip_vs_bpf"
  cat /proc/net/ip_vs_bpf
  say "BPF data path (pins under /sys/fs/bpf/ipvs-bpf)"
  bpftool map show pinned /sys/fs/bpf/ipvs-bpf/ipvs_ct_v1 || true
  node dist/test/demo/datapath-report.js --json "$LAB_OUT/datapath.json"
  for dev in "${TOPO_LB_IFS[@]}"; do
    printf '  %-6s %s\n' "$dev" "$(ip -details link show dev "$dev" | grep -o 'prog/xdp[^ ]* id [0-9]*' | head -n1 || true)"
  done
  tc filter show dev c-lb ingress | head -n 2 || true
fi

count=$(topo_conntrack_count)
echo "$count" >"$LAB_OUT/nf_conntrack_count"
say "nf_conntrack entries in the LB netns now: $count"
conntrack -L 2>/dev/null | head -n 5 || true

say "daemon log (since ready)"
sed -n '/ready/,$p' "$LAB_OUT/daemon.log" | sed 's/^/  daemon: /'
kill -TERM "$daemon"
wait "$daemon" || true
tail -n 1 "$LAB_OUT/daemon.log" | sed 's/^/  daemon: /'
