#!/usr/bin/env bash
# Runs INSIDE the lab VM (root), with the patched modules from build.sh loaded
# in place of the stock ones. Checks plain NAT with bpf_mode=0, the map
# hand-over errnos, BPF mode (PRE_ROUTING, untracked, 3 entries per conn,
# removal on expiry) and a real server on the LB host. Its addresses (VIPs
# 10.0.0.200/201, 10.0.1.0/24, 10.0.2.0/24, netns cli and rs) stay clear of
# test/lab/topology.sh, so both can live in one VM.
# Usage: vm-smoke.sh <ipvs-bpf-ctl binary>
set -u
CTL=$1
fails=0
check() { # $1 = name, $2 = expected, $3 = actual
	if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: want '$2' got '$3'"; fails=$((fails+1)); fi
}
counter() { awk -v k="$1" '$1==k {print $2}' /proc/net/ip_vs_bpf; }

modprobe nf_conntrack; modprobe nf_conntrack_netlink; modprobe ip_vs; modprobe ip_vs_rr
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1

ip netns add cli; ip netns add rs
ip link add vc type veth peer name vc0 netns cli
ip link add vr type veth peer name vr0 netns rs
ip addr add 10.0.1.1/24 dev vc; ip link set vc up
ip addr add 10.0.2.1/24 dev vr; ip link set vr up
ip addr add 10.0.0.200/32 dev lo; ip addr add 10.0.0.201/32 dev lo; ip link set lo up
ip -n cli addr add 10.0.1.2/24 dev vc0; ip -n cli link set vc0 up; ip -n cli link set lo up
ip -n cli route add default via 10.0.1.1
ip -n rs addr add 10.0.2.2/24 dev vr0; ip -n rs link set vr0 up; ip -n rs link set lo up
ip -n rs route add default via 10.0.2.1
ip netns exec rs socat -t5 TCP-LISTEN:8080,fork,reuseaddr SYSTEM:'echo remote-rs' &
servers=$!
socat -t5 TCP-LISTEN:8081,bind=10.0.1.1,fork,reuseaddr SYSTEM:'echo local-rs' &
servers="$servers $!"
# The servers go with the script (a caller may go on in the same VM).
trap 'kill $servers 2>/dev/null' EXIT
sleep 1

ipvsadm -A -t 10.0.0.200:80 -s rr && ipvsadm -a -t 10.0.0.200:80 -r 10.0.2.2:8080 -m
ipvsadm -A -t 10.0.0.201:80 -s rr && ipvsadm -a -t 10.0.0.201:80 -r 10.0.1.1:8081 -m
ipvsadm --set 30 2 5
# Make conntrack active in this netns and let IPVS keep (plain mode) or not
# (BPF mode) the conntrack entries of its flows.
iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED,UNTRACKED -j ACCEPT
sysctl -qw net.ipv4.vs.conntrack=1
sysctl -qw net.ipv4.vs.expire_nodest_conn=1

# -t: keep reading after our EOF long enough for the slow (TCG) server reply
get() { ip netns exec cli socat -t5 -T5 - TCP:$1,connect-timeout=3 </dev/null 2>&1; }
ctcount() { conntrack -L 2>/dev/null | grep -c "dst=$1 " | tr -d ' '; }

echo "== plain mode"
check plain.bpf_mode 0 "$(sysctl -n net.ipv4.vs.bpf_mode)"
check plain.remote "remote-rs" "$(get 10.0.0.200:80)"
check plain.local "local-rs" "$(get 10.0.0.201:80)"
check plain.tracked 1 "$(ctcount 10.0.0.200 | awk '{print ($1>0)}')"

echo "== hand-over errnos"
bpftool map create /sys/fs/bpf/good type hash key 40 value 64 entries 1024 name ipvs_ct_v1
bpftool map create /sys/fs/bpf/good2 type hash key 40 value 64 entries 1024 name ipvs_ct_v1
bpftool map create /sys/fs/bpf/badkey type hash key 20 value 64 entries 1024 name ipvs_ct_v1
bpftool map create /sys/fs/bpf/badtype type array key 4 value 64 entries 16 name ipvs_ct_v1
bpftool map create /sys/fs/bpf/badname type hash key 40 value 64 entries 1024 name other
check err.detach_none "error ENOENT 2" "$($CTL cmd detach)"
check err.badfd "error EBADF 9" "$($CTL attach-fd 999)"
check err.notmap "error EINVAL 22" "$($CTL attach-fd 0)"
check err.badkey "error EMSGSIZE 90" "$($CTL attach /sys/fs/bpf/badkey)"
check err.badtype "error EMEDIUMTYPE 124" "$($CTL attach /sys/fs/bpf/badtype)"
check err.badname "error EPROTO 71" "$($CTL attach /sys/fs/bpf/badname)"
check err.badabi "error EPROTO 71" "$($CTL attach /sys/fs/bpf/good 2)"
check err.badcmd "error EOPNOTSUPP 95" "$($CTL cmd frobnicate)"
check err.badports "error ERANGE 34" "$($CTL cmd 'ports 9 3')"
check attach.ok ok "$($CTL attach /sys/fs/bpf/good)"
check attach.same ok "$($CTL attach /sys/fs/bpf/good)"
check attach.other "error EBUSY 16" "$($CTL attach /sys/fs/bpf/good2)"
check detach.ok ok "$($CTL cmd detach)"
check reattach.ok ok "$($CTL attach /sys/fs/bpf/good)"
check snat.ok ok "$($CTL cmd 'snat 10.0.2.1')"
check ports.ok ok "$($CTL cmd 'ports 20000 40000')"
cat /proc/net/ip_vs_bpf

echo "== BPF mode"
sysctl -qw net.ipv4.vs.bpf_mode=1
conntrack -F 2>/dev/null
check bpf.remote "remote-rs" "$(get 10.0.0.200:80)"
ipvsadm -Lnc
n=$(bpftool map dump pinned /sys/fs/bpf/good -j | grep -o '"key"' | wc -l)
echo "entries right after: $n"
bpftool map dump pinned /sys/fs/bpf/good | head -40
check bpf.inserts 3 "$(counter inserts)"
check bpf.untracked 0 "$(ctcount 10.0.0.200)"
check bpf.local "local-rs" "$(get 10.0.0.201:80)"
check bpf.local_rs 1 "$(counter local_rs)"
# Expire the conns: TIME_WAIT lasts 2 min, so remove the real server
# (expire_nodest_conn=1 flushes its conns) and put it back.
ipvsadm -d -t 10.0.0.200:80 -r 10.0.2.2:8080
sleep 3
ipvsadm -a -t 10.0.0.200:80 -r 10.0.2.2:8080 -m
ipvsadm -Lnc
check bpf.expired_entries 0 "$(bpftool map dump pinned /sys/fs/bpf/good -j | grep -o '"key"' | wc -l | tr -d ' ')"
check bpf.deletes 3 "$(counter deletes)"
check bpf.conns 0 "$(counter conns)"

echo "== detach removes the entries of live conns"
check bpf.remote2 "remote-rs" "$(get 10.0.0.200:80)"
check bpf.entries2 3 "$(bpftool map dump pinned /sys/fs/bpf/good -j | grep -o '"key"' | wc -l | tr -d ' ')"

echo "== fallback without map"
check detach2.ok ok "$($CTL cmd detach)"
check detach2.flushed 1 "$(counter flushed)"
check detach2.entries 0 "$(bpftool map dump pinned /sys/fs/bpf/good -j | grep -o '"key"' | wc -l | tr -d ' ')"
check nomap.remote "remote-rs" "$(get 10.0.0.200:80)"
check nomap.counted 1 "$(counter no_map)"
check fallback.drop ok "$($CTL cmd 'fallback drop')"
check refused.remote "" "$(get 10.0.0.200:80 | grep -c remote-rs | sed 's/^0$//')"
check refused.counted 1 "$([ "$(counter refused)" -ge 1 ] && echo 1)"

echo "== back to plain"
sysctl -qw net.ipv4.vs.bpf_mode=0
check plain2.remote "remote-rs" "$(get 10.0.0.200:80)"
cat /proc/net/ip_vs_bpf
dmesg | grep -iE 'ipvs|bug|warn|oops' | tail -20
echo "FAILS=$fails"
[ $fails = 0 ]
