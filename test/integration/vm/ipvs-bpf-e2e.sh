#!/bin/bash
# Runs in the lab VM (shell mode, root) with the patched IPVS modules loaded, for
# test/integration/ipvs-bpf-e2e.suite.ts (on either lab kernel), which judges what this records:
#   $LAB_OUT/results.kv          key=value figures, one per line, in the order measured
#   $LAB_OUT/<phase>-flows.json  the traffic tool's per-flow results; long.json the long-lived flow's
#   $LAB_OUT/*.log, *.txt        diagnostics (daemon log, ipvsadm/conntrack listings, probe details)
# Phases: smoke (kernel-patch/test/vm-smoke.sh, fresh module state), control (plain IPVS NAT +
# MASQUERADE), bpf (the daemon in mode bpf: N flows held, then expiry), long (one TCP flow carried by XDP
# past IPVS's idle timeout), edge (SCTP, fragmented UDP and IPv4 options through bpf mode, with be1
# routing only the SNAT addresses back), full (map full), absent (map detached: fallback nat, then drop).
# Env: E2E_FLOWS (N), E2E_SMOKE_CTL (ipvs-bpf-ctl binary; empty = skip the smoke phase), E2E_MAP_ENTRIES,
# E2E_EDGE_PEER (edge-peer binary, test/integration/vm/edge-peer.c; empty = skip the edge phase).
# The smoke test runs first, on fresh module state (it checks absolute counters); everything after it
# judges counters by their change between two snapshots.
set -u
cd "$LAB_CHECKOUT"
OUT=$LAB_OUT
KV=$OUT/results.kv
: >"$KV"
N=${E2E_FLOWS:-45}
MAP_ENTRIES=${E2E_MAP_ENTRIES:-600}
W=/tmp/e2e
mkdir -p "$W"
TRAFFIC=dist/test/integration/vm/ipvs-bpf-traffic.js
PROBE=dist/test/integration/vm/ipvs-bpf-probe.js
VIP=10.0.0.100
CLIENT=10.1.0.2
EP=${E2E_EDGE_PEER:-}
# a second SNAT address: SCTP keeps the client's port, so two clients with the same port need two
SNAT2=10.9.0.2
T0=$(date +%s%N)

kv() { echo "$1=$2" >>"$KV"; }
ms() { echo $(( ($(date +%s%N) - T0) / 1000000 )); }
phase() { echo "== $1 at $(ms) ms"; kv "time.$1" "$(ms)"; }
counter() { awk -v k="$1" '$1==k {print $2}' /proc/net/ip_vs_bpf; }
# nap SECONDS: sleep without a process (each exec costs 0.1-0.4 s under TCG)
mkfifo "$W/nap.fifo"
exec 9<>"$W/nap.fifo"
nap() { read -r -t "$1" -u 9 || true; }
kv vm.release "$(uname -r)"
wait_file() { # wait_file <file> <seconds>
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ -e "$1" ] && return 0; nap 0.1; done
  return 1
}
wait_file_line() { # wait_file_line <file> <line> <seconds>
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -qx "$2" "$1" 2>/dev/null && return 0; nap 0.1; done
  return 1
}
# The node helpers run as command loops (ipvs-bpf-rpc.ts): one node start each, not one per command.
# rpc_start <name> <fd> <command...>; rpc_send <name> <fd> <args...> sets RPC_ID; rpc_wait <name> <id> <secs>
RPC_ID=0
rpc_start() {
  local name=$1 fd=$2
  shift 2
  mkdir -p "$W/rpc-$name"
  mkfifo "$W/$name.fifo"
  "$@" loop "$W/$name.fifo" "$W/rpc-$name" 2>>"$OUT/$name.err" &
  eval "exec $fd>\"\$W/\$name.fifo\""
}
rpc_send() { local name=$1 fd=$2; shift 2; RPC_ID=$((RPC_ID + 1)); echo "$RPC_ID $*" >&"$fd"; }
rpc_wait() {
  wait_file "$W/rpc-$1/$2.done" "$3" || { echo "rpc $1 #$2: no answer in $3 s" >&2; return 1; }
  cat "$W/rpc-$1/$2.err" >&2
  [ ! -s "$W/rpc-$1/$2.err" ]
}
# probe <command> <lab.json> <prefix> [flows.json]: figures into results.kv (ipvs-bpf-probe.ts)
probe() {
  rpc_send probe 7 "$@"
  rpc_wait probe $RPC_ID 120 2>>"$OUT/probe.txt" || kv "probe.failed.$3" 1
  cat "$W/rpc-probe/$RPC_ID.out" >>"$KV"
}
# ct_count <proto>: conntrack entries of the client's flows to the VIP (either direction's tuple)
ct_count() { conntrack -L -p "$1" --orig-src "$CLIENT" 2>/dev/null | grep -c . ; }
# ipvs_conns <vport>: IPVS connections from the client to VIP:vport
ipvs_conns() { ipvsadm -Lnc | awk -v c="$CLIENT:" -v v="$VIP:$1" 'index($4,c)==1 && $5==v' | wc -l; }
# run_flows <name> <n> <hook> [<timeout ms>]: n TCP + n UDP flows held open while <hook> runs
run_flows() {
  local name=$1 n=$2 hook=$3 d=$W/$1 id
  mkdir -p "$d"
  rpc_send client 8 flows "$VIP" 80 53 "$n" "$d" "${4:-}"
  id=$RPC_ID
  if wait_file "$d/held" 240; then
    kv "$name.held_ms" "$(ms)"
    "$hook" "$name" "$d"
  else
    kv "$name.held" timeout
  fi
  touch "$d/release"
  rpc_wait client "$id" 240 2>>"$OUT/$name-client.err"
  kv "$name.client_rc" $?
  cp "$d/flows.json" "$OUT/$name-flows.json" 2>/dev/null
}

# ---------------------------------------------------------------- topology, servers (starting while the smoke test runs)
phase topology
modprobe ip_vs; modprobe ip_vs_rr; modprobe nf_conntrack_netlink
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
# shellcheck source=../../lab/topology.sh
source test/lab/topology.sh
topo_up
topo_tx_csum_off
ip addr add "$SNAT2/32" dev lo
kv topo.lb_ifs "${TOPO_LB_IFS[*]}"
# Every node start reads node and its modules over 9p and takes seconds of emulated CPU: start the
# long-lived servers now, while the smoke test (shell tools) runs.
ip netns exec be1 node "$TRAFFIC" serve be1 0.0.0.0 8080 8053 >"$OUT/be1.log" 2>&1 &
ip netns exec be2 node "$TRAFFIC" serve be2 0.0.0.0 8080 8053 >"$OUT/be2.log" 2>&1 &
node "$TRAFFIC" serve local "$TOPO_LOCAL_RS" 8080 8053 >"$OUT/local.log" 2>&1 &
# the edge phase's real servers on be1: UDP echo (9053; 9054 answers with IP options), TCP and SCTP echo
if [ -n "$EP" ]; then
  modprobe sctp
  ip netns exec be1 "$EP" udp-serve 0.0.0.0 9053 plain >"$OUT/edge-udp.log" 2>&1 &
  ip netns exec be1 "$EP" udp-serve 0.0.0.0 9054 opt >"$OUT/edge-udpopt.log" 2>&1 &
  ip netns exec be1 "$EP" stream-serve tcp 0.0.0.0 9080 >"$OUT/edge-tcp.log" 2>&1 &
  ip netns exec be1 "$EP" stream-serve sctp 0.0.0.0 7001 >"$OUT/edge-sctp.log" 2>&1 &
fi

# ---------------------------------------------------------------- smoke
if [ -n "${E2E_SMOKE_CTL:-}" ]; then
  phase smoke
  bash kernel-patch/test/vm-smoke.sh "$E2E_SMOKE_CTL" >"$OUT/smoke.log" 2>&1
  kv smoke.rc $?
  kv smoke.pass "$(grep -c '^PASS ' "$OUT/smoke.log")"
  kv smoke.fail "$(grep -c '^FAIL ' "$OUT/smoke.log")"
  # Leave the VM as the smoke test found it (its namespaces, addresses, rules, maps, settings).
  ipvsadm -C
  ip netns del cli; ip netns del rs
  ip addr del 10.0.0.200/32 dev lo; ip addr del 10.0.0.201/32 dev lo
  iptables -F
  echo 'fallback nat' >/proc/net/ip_vs_bpf
  echo detach >/proc/net/ip_vs_bpf 2>/dev/null
  rm -f /sys/fs/bpf/good /sys/fs/bpf/good2 /sys/fs/bpf/badkey /sys/fs/bpf/badtype /sys/fs/bpf/badname
  sysctl -qw net.ipv4.vs.bpf_mode=0 net.ipv4.vs.conntrack=0 net.ipv4.vs.expire_nodest_conn=0
  conntrack -F 2>/dev/null
fi

phase servers
for s in be1 be2 local; do
  ns=$s; [ $s = local ] && ns=-
  topo_wait_listen "$ns" tcp 8080 && topo_wait_listen "$ns" udp 8053 || kv "server.$s" down
done
if [ -n "$EP" ]; then
  for s in udp udpopt tcp sctp; do wait_file_line "$OUT/edge-$s.log" listening 30 || kv "server.edge-$s" down; done
fi
kv servers.up_ms "$(ms)"
rpc_start client 8 ip netns exec client node "$TRAFFIC"
rpc_start probe 7 node "$PROBE"

cat >"$W/rules" <<EOF
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 10.2.1.2:8080 -m -w 1
-a -t $VIP:80 -r 10.2.2.2:8080 -m -w 1
-a -t $VIP:80 -r $TOPO_LOCAL_RS:8080 -m -w 1
-A -u $VIP:53 -s rr
-a -u $VIP:53 -r 10.2.1.2:8053 -m -w 1
-a -u $VIP:53 -r 10.2.2.2:8053 -m -w 1
-a -u $VIP:53 -r $TOPO_LOCAL_RS:8053 -m -w 1
-A -t $VIP:81 -s rr
-a -t $VIP:81 -r 10.2.1.2:8080 -m -w 1
-A -u $VIP:5300 -s rr
-a -u $VIP:5300 -r 10.2.1.2:9053 -m -w 1
-A -u $VIP:5301 -s rr
-a -u $VIP:5301 -r 10.2.1.2:9054 -m -w 1
-A -t $VIP:82 -s rr
-a -t $VIP:82 -r 10.2.1.2:9080 -m -w 1
-A --sctp-service $VIP:7000 -s rr
-a --sctp-service $VIP:7000 -r 10.2.1.2:7001 -m -w 1
EOF
cp "$W/rules" "$OUT/rules"
cat >"$W/lab.json" <<EOF
{ "pinDir": "/sys/fs/bpf/ipvs-bpf", "client": "$CLIENT", "vip": "$VIP",
  "services": { "tcp": { "vport": 80, "rport": 8080 }, "udp": { "vport": 53, "rport": 8053 } },
  "backends": { "be1": "10.2.1.2", "be2": "10.2.2.2", "local": "$TOPO_LOCAL_RS" },
  "snat": ["$TOPO_SNAT", "$SNAT2"], "snatPorts": [1024, 65535] }
EOF
# conntrack is active in the LB netns only once a rule asks for it; this one does, in both runs
iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED,RELATED,UNTRACKED -j ACCEPT

# ---------------------------------------------------------------- control: plain IPVS NAT + MASQUERADE
phase control
kv control.bpf_mode "$(sysctl -n net.ipv4.vs.bpf_mode)"
sysctl -qw net.ipv4.vs.conntrack=1
iptables -t nat -A POSTROUTING -j MASQUERADE
ipvsadm -R <"$W/rules"
ipvsadm --set 120 5 10
control_held() {
  kv "$1.ipvs_conns.tcp" "$(ipvs_conns 80)"
  kv "$1.ipvs_conns.udp" "$(ipvs_conns 53)"
  kv "$1.ct.tcp" "$(ct_count tcp)"
  kv "$1.ct.udp" "$(ct_count udp)"
  conntrack -L >"$OUT/$1-conntrack.txt" 2>/dev/null
}
run_flows control "$N" control_held
iptables -t nat -D POSTROUTING -j MASQUERADE
ipvsadm -C
sysctl -qw net.ipv4.vs.conntrack=0
conntrack -F 2>/dev/null

# ---------------------------------------------------------------- bpf: the daemon in mode bpf
phase bpf
cat >"$W/config.json" <<EOF
{
  "mode": "bpf",
  "rules": ["$W/rules"],
  "interfaces": ["c-lb", "b1-lb", "b2-lb"],
  "xdp": { "enabled": true, "mode": "native" },
  "mapEntries": $MAP_ENTRIES,
  "snat": { "addresses": ["$TOPO_SNAT", "$SNAT2"], "fallback": "nat" },
  "dbus": { "bus": "none" },
  "log": { "level": "info" }
}
EOF
cp "$W/config.json" "$OUT/config.json"
node bin/ipvs-bpf --config "$W/config.json" >"$OUT/daemon.log" 2>&1 &
daemon=$!
for ((i = 0; i < 1200; i++)); do
  grep -q 'ready' "$OUT/daemon.log" && break
  kill -0 $daemon 2>/dev/null || break
  nap 0.1
done
if ! grep -q 'ready' "$OUT/daemon.log"; then
  kv daemon.ready 0
  cat "$OUT/daemon.log"
  exit 3
fi
kv daemon.ready 1
kv daemon.ready_ms "$(ms)"
topo_xdp_peers
kv bpf.bpf_mode "$(sysctl -n net.ipv4.vs.bpf_mode)"
for i in "${TOPO_LB_IFS[@]}"; do
  kv "attach.$i.xdp" "$(ip -d link show dev "$i" | grep -c 'prog/xdp')"
  kv "attach.$i.tc" "$(( $(tc filter show dev "$i" ingress | grep -c 'direct-action') + $(tc filter show dev "$i" egress | grep -c 'direct-action') ))"
done
ipvsadm -Sn >"$OUT/bpf-ipvsadm-S.txt"
kv bpf.services "$(ipvsadm -Sn | grep -c '^-A')"
cat /proc/net/ip_vs_bpf >"$OUT/bpf-kernel-start.txt"
ipvsadm --set 120 5 10
probe state "$W/lab.json" before
bpf_held() {
  kv "$1.ipvs_conns.tcp" "$(ipvs_conns 80)"
  kv "$1.ipvs_conns.udp" "$(ipvs_conns 53)"
  kv "$1.ct.tcp" "$(ct_count tcp)"
  kv "$1.ct.udp" "$(ct_count udp)"
  kv "$1.ct.total" "$(topo_conntrack_count)"
  probe state "$W/lab.json" "$1" "$2/flows.json"
  conntrack -L >"$OUT/$1-conntrack.txt" 2>/dev/null
  ipvsadm -Lnc >"$OUT/$1-ipvsadm-c.txt"
}
run_flows bpf "$N" bpf_held
probe state "$W/lab.json" closed "$W/bpf/flows.json"
kv closed.ct.tcp "$(ct_count tcp)"
kv closed.ct.udp "$(ct_count udp)"
# IPVS expires the connections (RST: CLOSE, 10 s; UDP: 10 s after the last packet, the keep-alive looking
# at the fast path's last_seen); the entries must go with them.
phase expiry
for ((i = 0; i < 120; i++)); do
  [ "$(counter conns)" = 0 ] && [ "$(ipvs_conns 80)" = 0 ] && [ "$(ipvs_conns 53)" = 0 ] && break
  nap 0.5
done
kv expiry.done_ms "$(ms)"
ipvsadm -Lnc >"$OUT/expired-ipvsadm-c.txt"
kv expired.ipvs_conns.tcp "$(ipvs_conns 80)"
kv expired.ipvs_conns.udp "$(ipvs_conns 53)"
probe state "$W/lab.json" expired "$W/bpf/flows.json"

# ---------------------------------------------------------------- long: one flow carried by XDP past the idle timeout
phase long
LONG_T=5
ipvsadm --set $LONG_T 5 10
kv long.timeout "$LONG_T"
svc_inpkts() { ipvsadm -Ln --stats --exact -t "$VIP:81" | awk '$1=="TCP" {print $4}'; }
mkdir -p "$W/long"
long_json() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$W/long/long.json"; }
rpc_send client 8 long "$VIP" 81 500 "$W/long"
lid=$RPC_ID
wait_file "$W/long/long.json" 60
# IPVS's per-service counters lag by up to 2 s (estimator): the window starts after the handshake.
nap 3
long_start=$(ms)
kv long.inpkts_a "$(svc_inpkts)"
probe state "$W/lab.json" long_a
kv long.ok_a "$(long_json ok)"
# more than twice the idle timeout later: still there, still established, still fast?
nap $(( 2 * LONG_T + 1 ))
kv long.ok_b "$(long_json ok)"
cport=$(long_json cport)
kv long.cport "$cport"
ipvsadm -Lnc >"$OUT/long-ipvsadm-c.txt"
kv long.ipvs_conn_mid "$(awk -v c="$CLIENT:$cport" '$4==c' "$OUT/long-ipvsadm-c.txt" | wc -l)"
kv long.ipvs_established "$(awk -v c="$CLIENT:$cport" '$4==c && $3=="ESTABLISHED"' "$OUT/long-ipvsadm-c.txt" | wc -l)"
kv long.inpkts_b "$(svc_inpkts)"
probe state "$W/lab.json" long_b
kv long.window_ms $(( $(ms) - long_start ))
touch "$W/long/stop"
rpc_wait client $lid 60 2>>"$OUT/long-client.err"
kv long.client_rc $?
cp "$W/long/long.json" "$OUT/long.json"

# ---------------------------------------------------------------- edge: SCTP, fragments, IP options
# be1 routes only the SNAT addresses back: a packet that reaches it untranslated gets no answer.
edge_services=("-u $VIP:5300 -r 10.2.1.2:9053" "-u $VIP:5301 -r 10.2.1.2:9054" "-t $VIP:82 -r 10.2.1.2:9080"
               "--sctp-service $VIP:7000 -r 10.2.1.2:7001")
wait_held() { # wait_held <name> <pid>: until the stream client holds its association (or gave up)
  local i
  for ((i = 0; i < 600; i++)); do
    [ -e "$W/edge/$1.held" ] && return 0
    kill -0 "$2" 2>/dev/null || break
    nap 0.1
  done
  kv "$1.held" no
}
edge_ct() { # edge_ct <prefix>: conntrack entries now, per protocol and in all
  local p
  for p in udp tcp sctp; do kv "$1.ct.$p" "$(conntrack -L -p $p 2>/dev/null | grep -c .)"; done
  kv "$1.ct.total" "$(topo_conntrack_count)"
}
if [ -n "$EP" ]; then
  phase edge
  ipvsadm --set 120 5 10
  ip -n be1 route add blackhole 10.1.0.0/24
  ip -n client addr add 10.1.0.3/24 dev eth0
  ip -n client addr add 10.1.0.4/24 dev eth0
  mkdir -p "$W/edge"
  probe state "$W/lab.json" edge_a
  # UDP through VIP:5300 (plain) and VIP:5301 (both ways with Record Route): <request>:<reply> bytes;
  # 3000 and 8000 leave the client, and the real server, in fragments (MTU 1500)
  ip netns exec client "$EP" udp edge.udp "$CLIENT" 41000 "$VIP" 5300 plain \
    1200:1200 3000:3000 8000:8000 100:8000 8000:100 >>"$KV" 2>>"$OUT/edge-client.err"
  ip netns exec client "$EP" udp edge.udpopt "$CLIENT" 41001 "$VIP" 5301 opt 100:100 3000:3000 \
    >>"$KV" 2>>"$OUT/edge-client.err"
  edge_ct edge_u
  probe state "$W/lab.json" edge_u
  # TCP with Record Route from the client; the real server echoes the option on every segment
  ip netns exec client "$EP" stream edge.tcpopt tcp "$CLIENT" 41002 "$VIP" 82 opt 200000 \
    >>"$KV" 2>>"$OUT/edge-client.err"
  probe state "$W/lab.json" edge_t
  # SCTP: a and b use the same client port (two client addresses), so b needs the second SNAT address;
  # c, a third, finds none free and falls back (plain NAT, which be1's routes do not carry)
  ip netns exec client "$EP" stream edge.sctp_a sctp "$CLIENT" 5001 "$VIP" 7000 plain 100000 "$W/edge" \
    >"$W/edge/a.kv" 2>>"$OUT/edge-client.err" &
  sa=$!
  wait_held edge.sctp_a $sa
  probe state "$W/lab.json" edge_s0
  ip netns exec client "$EP" stream edge.sctp_b sctp 10.1.0.3 5001 "$VIP" 7000 plain 100000 "$W/edge" \
    >"$W/edge/b.kv" 2>>"$OUT/edge-client.err" &
  sb=$!
  wait_held edge.sctp_b $sb
  edge_ct edge_s1
  probe state "$W/lab.json" edge_s1
  ipvsadm -Lnc >"$OUT/edge-ipvsadm-c.txt"
  ip netns exec client "$EP" stream edge.sctp_c sctp 10.1.0.4 5001 "$VIP" 7000 plain 1000 \
    >>"$KV" 2>>"$OUT/edge-client.err"
  probe state "$W/lab.json" edge_s2
  touch "$W/edge/release"
  wait $sa $sb
  cat "$W/edge/a.kv" "$W/edge/b.kv" >>"$KV"
  edge_ct edge_s3
  # done: IPVS keeps closed SCTP associations 61 s; removing the real servers (expire_nodest_conn)
  # expires every edge connection now, and they are put back as the rule file has them
  sysctl -qw net.ipv4.vs.expire_nodest_conn=1
  for s in "${edge_services[@]}"; do
    # shellcheck disable=SC2086
    ipvsadm -d $s
  done
  for ((i = 0; i < 60; i++)); do [ "$(counter conns)" = 0 ] && break; nap 0.5; done
  for s in "${edge_services[@]}"; do
    # shellcheck disable=SC2086
    ipvsadm -a $s -m -w 1
  done
  sysctl -qw net.ipv4.vs.expire_nodest_conn=0
  kv edge.conns_left "$(counter conns)"
  ip -n be1 route del blackhole 10.1.0.0/24
  ip -n client addr del 10.1.0.3/24 dev eth0
  ip -n client addr del 10.1.0.4/24 dev eth0
  probe state "$W/lab.json" edge_end
fi

# ---------------------------------------------------------------- full: the map is full
phase full
ipvsadm --set 120 5 10
# the long flow's connection (CLOSE after its RST) must be gone first, or its expiry frees room in the full map
for ((i = 0; i < 60; i++)); do [ "$(counter conns)" = 0 ] && break; nap 0.5; done
kv full.conns_before "$(counter conns)"
probe fill "$W/lab.json" full
probe state "$W/lab.json" full_a
run_flows full 6 true
probe state "$W/lab.json" full_b "$W/full/flows.json"
probe unfill "$W/lab.json" full

# ---------------------------------------------------------------- absent: no map attached
phase absent
echo detach >/proc/net/ip_vs_bpf
kv absent.detach_rc $?
probe state "$W/lab.json" absent_a
run_flows absent 6 true
probe state "$W/lab.json" absent_b "$W/absent/flows.json"
echo 'fallback drop' >/proc/net/ip_vs_bpf
run_flows refused 3 true 4000
probe state "$W/lab.json" refused_b "$W/refused/flows.json"
kv refused.ct.tcp "$(ct_count tcp)"

phase end
exec 7>&- 8>&-
kill $daemon
wait $daemon
kv daemon.exit $?
cat /proc/net/ip_vs_bpf >"$OUT/kernel-end.txt"
dmesg >"$OUT/dmesg.txt"
kv dmesg.oops "$(grep -cE '\bOops\b|BUG:|WARNING:|general protection|kmemleak|refcount_t:' "$OUT/dmesg.txt")"
exit 0
