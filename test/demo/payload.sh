#!/bin/bash
# The demo inside the lab VM: a client namespace -> this host (the load balancer, VIP 10.0.0.100)
# -> two real-server namespaces; the service table comes from examples/demo.rules through ipvs-bpfctl.
set -euo pipefail
say() { printf '\n== %s\n' "$*"; }
REQUESTS=${DEMO_REQUESTS:-200}
CONCURRENCY=${DEMO_CONCURRENCY:-4}

say "kernel $(uname -r); loading IPVS"
modprobe ip_vs
modprobe ip_vs_rr
modprobe veth
modprobe nf_conntrack
sysctl -qw net.ipv4.ip_forward=1
ip link set lo up

say "topology: client 10.1.0.2 -> LB (VIP 10.0.0.100) -> be1 10.2.1.2, be2 10.2.2.2"
ip netns add client
ip link add c-lb type veth peer name eth0 netns client
ip addr add 10.1.0.1/24 dev c-lb && ip link set c-lb up
ip -n client addr add 10.1.0.2/24 dev eth0
ip -n client link set eth0 up && ip -n client link set lo up
ip -n client route add default via 10.1.0.1
for i in 1 2; do
  ip netns add be$i
  ip link add b$i-lb type veth peer name eth0 netns be$i
  ip addr add 10.2.$i.1/24 dev b$i-lb && ip link set b$i-lb up
  ip -n be$i addr add 10.2.$i.2/24 dev eth0
  ip -n be$i link set eth0 up && ip -n be$i link set lo up
  ip -n be$i route add default via 10.2.$i.1
done
ip addr add 10.0.0.100/32 dev lo

say "ipvs-bpfctl -R < examples/demo.rules"
./bin/ipvs-bpfctl -R <examples/demo.rules
./bin/ipvs-bpfctl -Ln

say "starting real servers"
for i in 1 2; do
  ip netns exec be$i node test/demo/backend.js be$i 8080 >"$LAB_OUT/be$i.log" 2>&1 &
done
for i in 1 2; do
  for _ in $(seq 1 300); do
    ip netns exec be$i ss -Hltn 'sport = :8080' | grep -q . && break
    sleep 0.2
  done
done

say "client: $REQUESTS HTTP requests to 10.0.0.100:80, $CONCURRENCY at a time"
ip netns exec client node test/demo/client.js 10.0.0.100 80 "$REQUESTS" "$CONCURRENCY" | tee "$LAB_OUT/client.json"

say "ipvs-bpfctl -Ln --stats"
./bin/ipvs-bpfctl -Ln --stats
cat /proc/sys/net/netfilter/nf_conntrack_count >"$LAB_OUT/nf_conntrack_count"
say "nf_conntrack entries now: $(cat "$LAB_OUT/nf_conntrack_count")"
