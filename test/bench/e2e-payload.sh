#!/bin/bash
# bench:e2e inside the lab VM (one boot): short-connection rate and latency through two load balancers
# side by side, alternated round by round:
#
#   bpf   : this host (init netns, the shared topology of test/lab/topology.sh), the patched IPVS in BPF mode
#           with the daemon bin/ipvs-bpf (tc SNAT/reply + XDP on c-lb b1-lb b2-lb, SNAT 10.9.0.1), VIP
#           10.0.0.100:80, conntrack active in the netns (a FORWARD rule asks for it) but bypassed;
#   plain : netns "lbp", the same kernel's IPVS with bpf_mode 0 (stock behaviour), NAT forwarding,
#           net.ipv4.vs.conntrack=1 and iptables MASQUERADE towards the real servers: VIP 10.0.1.100:80.
#
# Both reach the same two real servers (one e2e-server each, :8080) and are driven by the same client
# namespace, each path over its own veths; every namespace end carries the same pass-through XDP program
# (the bpf path needs it for XDP_TX/REDIRECT into a veth; the plain path gets it too so both receive alike),
# and every veth has tx checksum offload off (the fast path needs complete checksums; both paths pay it).
#
#   client 10.1.0.2,10.1.0.10-25  eth0 == c-lb  [init netns, bpf LB]  b1-lb/b2-lb == eth0 be1/be2 10.2.{1,2}.2
#   client 10.5.0.2,10.5.0.10-25  eth1 == c-lbp [netns lbp, plain LB] b1-lbp/b2-lbp == eth1 be1/be2 10.6.{1,2}.2
#
# Environment: BENCH_BIN (dir of e2e-loadgen/e2e-server), BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONC,
# BENCH_WARMUP_SECONDS. Results: $LAB_OUT/results.jsonl (one loadgen JSON per line with mode and round),
# $LAB_OUT/after.json (conntrack counts, map entries, kernel counters).
set -euo pipefail
say() { printf '\n== %s\n' "$*"; }
BIN=${BENCH_BIN:?}
ROUNDS=${BENCH_ROUNDS:-7}
SECONDS_PER_RUN=${BENCH_SECONDS:-6}
CONC=${BENCH_CONC:-32}
WARMUP=${BENCH_WARMUP_SECONDS:-3}
PLAIN_VIP=10.0.1.100
CONF_DIR=/run/ipvs-bpf-bench
# shellcheck source=../lab/topology.sh
source test/lab/topology.sh

say "kernel $(uname -r), $(nproc) vCPUs; IPVS $([ -e /proc/net/ip_vs_bpf ] && echo patched || echo stock)"
# node and the daemon's modules come over 9p, slowly the first time: read them in the background now
node -e 'for (const m of process.argv.slice(1)) require(m)' "$PWD/dist/src/daemon/main.js" "$PWD/dist/src/bpf/loader.js" \
  "$PWD/dist/src/bpf/attach.js" "$PWD/dist/src/bpf/flows.js" >/dev/null 2>&1 &
modprobe ip_vs
modprobe ip_vs_rr
topo_up
# complete checksums on every veth (the XDP fast path needs them; the plain path below gets the same)
topo_tx_csum_off
iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT

# extra client source addresses: each load-generator connection takes the next one, so client tuples
# come back only after many connections (IPVS remembers a closed connection for 2 minutes).
src_bpf=$TOPO_CLIENT
src_plain=10.5.0.2
for i in $(seq 10 25); do
  ip -n client addr add "10.1.0.$i/24" dev eth0
  src_bpf+=",10.1.0.$i"
  src_plain+=",10.5.0.$i"
done

say "plain LB netns lbp: IPVS NAT + conntrack + MASQUERADE, VIP $PLAIN_VIP"
ip netns add lbp
ip -n lbp link set lo up
ip -n lbp addr add "$PLAIN_VIP/32" dev lo
ip netns exec lbp sysctl -qw net.ipv4.ip_forward=1
ip link add c-lbp netns lbp type veth peer name eth1 netns client
ip -n lbp addr add 10.5.0.1/24 dev c-lbp
ip -n lbp link set c-lbp up
ip -n client addr add 10.5.0.2/24 dev eth1
for i in $(seq 10 25); do ip -n client addr add "10.5.0.$i/24" dev eth1; done
ip -n client link set eth1 up
ip -n client route add "$PLAIN_VIP/32" via 10.5.0.1
for i in 1 2; do
  ip link add "b$i-lbp" netns lbp type veth peer name eth1 netns "be$i"
  ip -n lbp addr add "10.6.$i.1/24" dev "b$i-lbp"
  ip -n lbp link set "b$i-lbp" up
  ip -n "be$i" addr add "10.6.$i.2/24" dev eth1
  ip -n "be$i" link set eth1 up
done
for ns in client be1 be2; do
  ip -n "$ns" link set dev eth1 xdpdrv obj build/bpf/ipvs_xdp.bpf.o sec xdp program ipvs_xdp_pass
  ip netns exec "$ns" ethtool -K eth1 tx off >/dev/null
done
for dev in c-lbp b1-lbp b2-lbp; do ip netns exec lbp ethtool -K "$dev" tx off >/dev/null; done
ip netns exec lbp sysctl -qw net.ipv4.vs.conntrack=1
ip netns exec lbp ipvsadm -A -t "$PLAIN_VIP:80" -s rr
ip netns exec lbp ipvsadm -a -t "$PLAIN_VIP:80" -r 10.6.1.2:8080 -m -w 1
ip netns exec lbp ipvsadm -a -t "$PLAIN_VIP:80" -r 10.6.2.2:8080 -m -w 1
ip netns exec lbp iptables -t nat -A POSTROUTING -d 10.6.0.0/16 -j MASQUERADE
ip netns exec lbp ipvsadm -Ln

# statusInterval: the daemon's periodic status refresh dumps the whole conntrack map (flow count); once an
# hour keeps that out of the measured rounds.
say "bpf LB: ipvs-bpf (mode bpf) on ${TOPO_LB_IFS[*]}, SNAT $TOPO_SNAT, rules examples/demo.rules"
mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/config.json" <<EOF
{
  "mode": "bpf",
  "interfaces": ["c-lb", "b1-lb", "b2-lb"],
  "snat": { "addresses": ["$TOPO_SNAT"] },
  "rules": ["$PWD/examples/demo.rules"],
  "dbus": { "bus": "none" },
  "statusInterval": 3600
}
EOF
./bin/ipvs-bpf --config "$CONF_DIR/config.json" >"$LAB_OUT/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 1 600); do
  grep -q 'ready' "$LAB_OUT/daemon.log" && break
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.2
done
cat "$LAB_OUT/daemon.log"
grep -q 'ready' "$LAB_OUT/daemon.log" || { echo "bench: the daemon did not get ready" >&2; exit 1; }
topo_xdp_peers
./bin/ipvs-bpfctl -Ln

say "real servers: e2e-server in be1, be2 (:8080, both paths)"
for i in 1 2; do
  ip netns exec "be$i" "$BIN/e2e-server" "be$i" 8080 >"$LAB_OUT/server-be$i.log" 2>&1 &
done
for i in 1 2; do topo_wait_listen "be$i" tcp 8080; done

run() { # MODE ROUND SECONDS: one load-generator run, result line appended to results.jsonl (round > 0)
  local mode=$1 round=$2 secs=$3 vip=$TOPO_VIP src=$src_bpf out
  [ "$mode" = plain ] && { vip=$PLAIN_VIP; src=$src_plain; }
  out=$(ip netns exec client "$BIN/e2e-loadgen" "$vip" 80 "$CONC" "$secs" "$src")
  printf '  %-5s round %s: %s\n' "$mode" "$round" "$out"
  ((round > 0)) && echo "{\"mode\":\"$mode\",\"round\":$round,\"result\":$out}" >>"$LAB_OUT/results.jsonl"
  return 0
}

say "warm-up ($WARMUP s each, not counted)"
run bpf 0 "$WARMUP"
run plain 0 "$WARMUP"

say "$ROUNDS rounds x ($SECONDS_PER_RUN s bpf + $SECONDS_PER_RUN s plain), $CONC connections in flight, order alternating"
for r in $(seq 1 "$ROUNDS"); do
  if ((r % 2)); then run bpf "$r" "$SECONDS_PER_RUN"; run plain "$r" "$SECONDS_PER_RUN"
  else run plain "$r" "$SECONDS_PER_RUN"; run bpf "$r" "$SECONDS_PER_RUN"; fi
done

say "after the runs"
ct_bpf=$(topo_conntrack_count)
ct_plain=$(ip netns exec lbp cat /proc/sys/net/netfilter/nf_conntrack_count)
echo "nf_conntrack entries: bpf LB netns $ct_bpf, plain LB netns $ct_plain"
./bin/ipvs-bpfctl -Ln --stats
ip netns exec lbp ipvsadm -Ln --stats
cat /proc/net/ip_vs_bpf
node dist/test/demo/datapath-report.js --json "$LAB_OUT/datapath.json" | grep -v '^  [A-Z]* *tcp' || true
printf '{"nf_conntrack_bpf":%s,"nf_conntrack_plain":%s}\n' "$ct_bpf" "$ct_plain" >"$LAB_OUT/after.json"
kill -TERM "$daemon"
wait "$daemon" || true
