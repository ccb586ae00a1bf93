# Shared load-balancer topology for lab-VM payloads (integration tests, the demo, bench:e2e).
# Source it (bash), then call topo_up. Everything lives in namespaces created here; the VM's init netns is
# the load balancer ("LB host"):
#
#   client ns  10.1.0.2/24 eth0 ==veth== c-lb  10.1.0.1/24 ┐
#                                                         │ LB host: VIP 10.0.0.100/32 on lo,
#   be1 ns     10.2.1.2/24 eth0 ==veth== b1-lb 10.2.1.1/24 ┤ SNAT address 10.9.0.1/32 on lo,
#   be2 ns     10.2.2.2/24 eth0 ==veth== b2-lb 10.2.2.1/24 ┘ local real server 10.3.0.1/32 on dummy lrs0
#
# Backends route back through the LB (default via .1), so plain IPVS NAT works without SNAT; in BPF mode
# the patched IPVS picks a SNAT source from 10.9.0.1 (or whatever the daemon is told).
# All functions are idempotent enough for one VM boot; nothing here touches the host outside the VM.

TOPO_VIP=10.0.0.100
TOPO_SNAT=10.9.0.1
TOPO_CLIENT=10.1.0.2
TOPO_BACKENDS=(10.2.1.2 10.2.2.2)
TOPO_BACKEND_NS=(be1 be2)
TOPO_LOCAL_RS=10.3.0.1
# The LB's interfaces the data path attaches to (client side first).
TOPO_LB_IFS=(c-lb b1-lb b2-lb)

# topo_up: namespaces, veths, addresses, routes, forwarding. Loads veth and nf_conntrack (counts are read
# from /proc/sys/net/netfilter/nf_conntrack_count, which exists only with the module loaded).
topo_up() {
  modprobe veth
  modprobe nf_conntrack
  sysctl -qw net.ipv4.ip_forward=1
  # conntrack counts entries only in netns where something asks for it; make the LB's count meaningful
  sysctl -qw net.netfilter.nf_conntrack_max=262144 2>/dev/null || true
  ip link set lo up
  ip addr add "$TOPO_VIP/32" dev lo
  ip addr add "$TOPO_SNAT/32" dev lo
  ip link add lrs0 type dummy
  ip addr add "$TOPO_LOCAL_RS/32" dev lrs0
  ip link set lrs0 up

  ip netns add client
  ip link add c-lb type veth peer name eth0 netns client
  ip addr add 10.1.0.1/24 dev c-lb
  ip link set c-lb up
  ip -n client addr add "$TOPO_CLIENT/24" dev eth0
  ip -n client link set eth0 up
  ip -n client link set lo up
  ip -n client route add default via 10.1.0.1

  local i
  for i in 1 2; do
    ip netns add "be$i"
    ip link add "b$i-lb" type veth peer name eth0 netns "be$i"
    ip addr add "10.2.$i.1/24" dev "b$i-lb"
    ip link set "b$i-lb" up
    ip -n "be$i" addr add "10.2.$i.2/24" dev eth0
    ip -n "be$i" link set eth0 up
    ip -n "be$i" link set lo up
    ip -n "be$i" route add default via "10.2.$i.1"
  done
  # XDP_TX/XDP_REDIRECT into a veth needs an XDP program (or GRO) on the receiving peer; a pass-all program
  # is the documented way. Callers that attach XDP on the LB side call topo_xdp_peers.
}

# topo_xdp_peers [OBJ]: attach the pass-through XDP program (ipvs_xdp_pass of build/bpf/ipvs_xdp.bpf.o) to
# the namespace ends of the veths, so frames the LB's XDP program transmits or redirects into a veth are
# accepted by its peer (veth needs an XDP program on the receiving side for that).
topo_xdp_peers() {
  local obj=${1:-build/bpf/ipvs_xdp.bpf.o} ns
  for ns in client "${TOPO_BACKEND_NS[@]}"; do
    ip -n "$ns" link set dev eth0 xdpdrv obj "$obj" sec xdp program ipvs_xdp_pass
  done
}

# topo_wait_listen NS PROTO PORT: wait (up to ~60 s, TCG is slow) until something listens.
topo_wait_listen() {
  local ns=$1 proto=$2 port=$3 flag=-Hltn i
  [ "$proto" = udp ] && flag=-Hlun
  for i in $(seq 1 300); do
    if [ "$ns" = - ]; then ss "$flag" "sport = :$port" | grep -q . && return 0
    else ip netns exec "$ns" ss "$flag" "sport = :$port" | grep -q . && return 0; fi
    sleep 0.2
  done
  echo "topology: nothing listens on $proto/$port in $ns" >&2
  return 1
}

# topo_conntrack_count: entries in the LB's (init netns) conntrack table now.
topo_conntrack_count() {
  cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0
}

# topo_tx_csum_off: tx checksum offload off on both ends of every veth. The XDP fast path rewrites
# addresses and ports with incremental checksum updates, which needs complete checksums in the frames; a
# veth sender hands over CHECKSUM_PARTIAL skbs otherwise (see src/bpf/attach.ts).
topo_tx_csum_off() {
  local ns i
  for i in "${TOPO_LB_IFS[@]}"; do ethtool -K "$i" tx off >/dev/null; done
  for ns in client "${TOPO_BACKEND_NS[@]}"; do ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null; done
}
