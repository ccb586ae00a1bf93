#!/bin/bash
# Runs in the lab VM under real systemd with the patched IPVS modules (init: 'systemd', extraModules), as root:
# the daemon in mode ipvs and then bpf on the shared topology (test/lab/topology.sh), restarted, stopped and
# started under a live checksummed TCP stream (daemon-stream.ts) from the client namespace through the VIP;
# a broken configuration while a flow is live; an upgrade (restart with changed BPF objects installed,
# build/bpf-variant) under a live stream; then `ipvs-bpf --teardown`. Records each step's stdout,
# stderr and exit status under $LAB_OUT/bpfd/<step>.{out,err,rc}, data-path snapshots as
# <snap>.snap.json (datapath-snap.ts) + <snap>.proc, and stream verdicts as <stream>.json, for
# test/integration/daemon-bpf-systemd.test.ts to judge.
set -u
out=$LAB_OUT/bpfd
mkdir -p "$out"
PIN=/sys/fs/bpf/ipvs-bpf
M=(org.ipvsbpf1 /org/ipvsbpf1 org.ipvsbpf1.Manager)
STREAM=(node dist/test/integration/vm/daemon-stream.js)
# fetch_url <url>: the body on stdout, the HTTP status on stderr when it is not 200 (exit 1), or why it failed
fetch_url() {
  node -e 'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); if (!r.ok) { console.error(`HTTP ${r.status}`); process.exitCode = 1; } },
    (e) => { console.error(String(e.cause?.code ?? e)); process.exitCode = 1; })' "$1"
}
METRICS=http://127.0.0.1:9478/metrics
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# a user in the group ipvs-bpf (created by install-service), with its groups from /etc/group
as_member() { setpriv --reuid=flowreader --regid=nogroup --init-groups "$@"; }

rec() { # rec <step> <command...>
  local step=$1
  shift
  "$@" >"$out/$step.out" 2>"$out/$step.err"
  echo $? >"$out/$step.rc"
}
note() { echo "bpfd: $*" >&2; }
# snap <name>: what runs in the kernel: pins and their ids, our attachments, the redirect devices, the
# conntrack entries (datapath-snap.ts, through the addon), and the patched IPVS's control file.
snap() {
  node dist/test/integration/vm/datapath-snap.js $PIN c-lb b1-lb b2-lb >"$out/$1.snap.json" 2>&1
  { cat /proc/net/ip_vs_bpf; echo "sysctl_bpf_mode $(sysctl -n net.ipv4.vs.bpf_mode)"
    echo "pins $(ls $PIN 2>/dev/null | tr '\n' ' ')"; } >"$out/$1.proc" 2>&1
}
# The stream's status file, field $2 (sent, recv, done).
field() { jq -r ".$2 // empty" "/tmp/$1.status" 2>/dev/null; }
stream_start() { # stream_start <name>: a paced (256 KiB/s) echo stream client -> VIP:80
  rm -f "/tmp/$1.status"
  ip netns exec client "${STREAM[@]}" client "$TOPO_VIP" 80 "/tmp/$1.status" 256 &
  eval "pid_$1=$!"
}
# wait_recv <name> <bytes>: until that many bytes came back (or the stream ended, or 120 s).
wait_recv() {
  local i r
  for i in $(seq 1 600); do
    r=$(field "$1" recv)
    [ -n "$r" ] && [ "$r" -ge "$2" ] && return 0
    [ "$(field "$1" done)" = true ] && { note "$1 ended early: $(cat "/tmp/$1.status")"; return 1; }
    sleep 0.2
  done
  note "$1: $2 bytes not echoed in 120 s: $(cat "/tmp/$1.status" 2>/dev/null)"
  return 1
}
# progress <name> <step> <bytes>: records that <bytes> more came back after now (step.rc 0) or not.
progress() {
  local from
  from=$(field "$1" recv)
  from=${from:-0}
  wait_recv "$1" $((from + $3)) >"$out/$2.out" 2>"$out/$2.err"
  echo $? >"$out/$2.rc"
}
stream_finish() { # stream_finish <name>: SIGUSR1 (a last MiB, then the end), wait for the verdict
  local pid i
  pid=$(eval echo "\$pid_$1")
  kill -USR1 "$pid"
  for i in $(seq 1 600); do
    [ "$(field "$1" done)" = true ] && break
    sleep 0.2
  done
  wait "$pid"
  cp "/tmp/$1.status" "$out/$1.json" 2>/dev/null || echo '{"error":"no status"}' >"$out/$1.json"
}
config() { # config <mode> [extra JSON members] [SNAT address] [extra snat members]
  cat >/etc/ipvs-bpf/config.json <<EOF
{
  "rules": ["/etc/ipvs-bpf/rules"],
  "mode": "$1",
  "interfaces": ["c-lb", "b1-lb", "b2-lb"],
  "snat": { "addresses": ["${3:-$TOPO_SNAT}"]${4:+, $4} },
  "metrics": { "listen": "127.0.0.1:9478" },
  "statusInterval": 1${2:+,
  $2}
}
EOF
}

# The journal is wanted however far the payload gets.
trap 'journalctl -u ipvs-bpf --no-pager -o short >"$out/journal.txt" 2>&1' EXIT
systemctl is-system-running --wait >/dev/null 2>&1
rec uname uname -r
# shellcheck source=../../lab/topology.sh
source test/lab/topology.sh
topo_up
topo_tx_csum_off
# conntrack is only active in a netns once something asks for it: count what it sees of each mode's flows.
# IPVS confirms conntrack entries of its connections only with net.ipv4.vs.conntrack=1 (else they never show);
# BPF mode ignores it for the connections it creates, which is the contrast the checks look for.
iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED,RELATED,UNTRACKED -j ACCEPT
sysctl -qw net.ipv4.vs.conntrack=1
for ns in "${TOPO_BACKEND_NS[@]}"; do ip netns exec "$ns" "${STREAM[@]}" server 80 & done
rec install bash scripts/install-service.sh  # npm run install-service is checked by daemon-systemd.sh
useradd --no-create-home --gid nogroup --groups ipvs-bpf --shell /usr/sbin/nologin flowreader
cat >/etc/ipvs-bpf/rules <<EOF
-A -t $TOPO_VIP:80 -s rr
-a -t $TOPO_VIP:80 -r ${TOPO_BACKENDS[0]}:80 -m -w 1
-a -t $TOPO_VIP:80 -r ${TOPO_BACKENDS[1]}:80 -m -w 1
EOF

# --- 0. the shipped configuration (mode auto, no interfaces, no SNAT address) with the patched IPVS loaded:
# plain IPVS, and why; made usable (still auto), a reload says what a restart would do
rec shipped-config cat /etc/ipvs-bpf/config.json
rec shipped-start systemctl start ipvs-bpf
rec shipped-Mode busctl get-property "${M[@]}" Mode
rec shipped-ModeReason busctl get-property "${M[@]}" ModeReason
rec shipped-bpf-mode sysctl -n net.ipv4.vs.bpf_mode
rec shipped-proc cat /proc/net/ip_vs_bpf
config auto
rec shipped-reload systemctl reload ipvs-bpf
rec shipped-last-reload busctl get-property "${M[@]}" LastReload
rec shipped-Mode2 busctl get-property "${M[@]}" Mode
rec shipped-stop systemctl stop ipvs-bpf
config ipvs
for ns in "${TOPO_BACKEND_NS[@]}"; do topo_wait_listen "$ns" tcp 80; done

# --- 1. mode ipvs (the patched module with bpf_mode 0 is plain IPVS): restart and stop+start under a stream
rec ipvs-start systemctl start ipvs-bpf
rec ipvs-mode busctl get-property "${M[@]}" Mode
stream_start s1
rec s1-first wait_recv s1 $((1 << 20))
rec ipvs-restart systemctl restart ipvs-bpf
progress s1 s1-after-restart $((1 << 20))
rec ipvs-stop systemctl stop ipvs-bpf
progress s1 s1-while-stopped $((512 << 10))
rec ipvs-start2 systemctl start ipvs-bpf
progress s1 s1-after-start $((1 << 20))
rec s1-conntrack conntrack -L -s "$TOPO_CLIENT" -d "$TOPO_VIP"
stream_finish s1

# --- 2. mode bpf: switched on by a restart (mode is a restart-only setting)
config bpf
rec bpf-restart-to systemctl restart ipvs-bpf
rec bpf-active systemctl is-active ipvs-bpf
# Without a running bpf mode every later step would only wait for its timeout.
[ "$(cat "$out/bpf-restart-to.rc")" = 0 ] || { note "bpf mode did not start; see journal.txt"; exit 0; }
# the namespace ends accept what the LB's XDP transmits into the veths (as ipvs-bpf-e2e.sh: after the daemon)
topo_xdp_peers
snap bpf-start
for p in Mode ModeReason Interfaces FlowCount DataPathCounters KernelCounters; do
  rec "bpf-prop-$p" busctl --json=short get-property "${M[@]}" "$p"
done
stream_start s2
rec s2-first wait_recv s2 $((1 << 20))
sleep 2 # two status refreshes (statusInterval 1)
rec bpf-status ipvs-bpfctl status
rec bpf-status-json ipvs-bpfctl status -o json
rec bpf-flows busctl --json=short call "${M[@]}" ListFlows tu 0 0
# every page of at most one entry, as a member of ipvs-bpf: one JSON reply per line
flows_paged() {
  local cur=0 n=0 page
  while :; do
    page=$(as_member busctl --json=short call "${M[@]}" ListFlows tu "$cur" 1) || return 1
    echo "$page"
    cur=$(jq -r '.data[1]' <<<"$page")
    [ "$cur" = 0 ] && return 0
    n=$((n + 1))
    [ $n -lt 50 ] || return 1
  done
}
rec bpf-flows-paged flows_paged
rec bpf-flows-nobody as_nobody busctl call "${M[@]}" ListFlows tu 0 0
# a reload with an SNAT address this host does not have is refused; nothing changes
config bpf '' 10.9.0.77
rec bpf-reload-bad systemctl reload ipvs-bpf
rec bpf-reload-bad-active systemctl is-active ipvs-bpf
rec bpf-reload-bad-last busctl get-property "${M[@]}" LastReload
rec bpf-reload-bad-proc cat /proc/net/ip_vs_bpf
config bpf
snap s2-before
rec bpf-restart systemctl restart ipvs-bpf
snap s2-restarted
progress s2 s2-after-restart $((1 << 20))
rec bpf-stop systemctl stop ipvs-bpf
rec bpf-stopped-active systemctl is-active ipvs-bpf
snap s2-stopped
progress s2 s2-while-stopped $((1 << 20))
rec bpf-start2 systemctl start ipvs-bpf
snap s2-started
progress s2 s2-after-start $((1 << 20))
rec s2-conntrack conntrack -L -s "$TOPO_CLIENT" -d "$TOPO_VIP"
stream_finish s2
sleep 2
rec bpf-status-after ipvs-bpfctl status -o json

# --- 2b. connections that miss the BPF path are counted by the patched IPVS: the daemon logs and shows it.
# SNAT ports only inside ip_local_port_range (always excluded): every new connection finds no port.
config bpf '' '' '"portMin": 40000, "portMax": 40001'
rec alert-reload systemctl reload ipvs-bpf
rec alert-conns ip netns exec client timeout 20 bash -c \
  'for i in 1 2 3; do exec 3<>"/dev/tcp/$0/80" && exec 3<&-; done' "$TOPO_VIP"
sleep 3 # status refreshes (statusInterval 1)
rec alert-prop busctl --json=short get-property "${M[@]}" Alerts
rec alert-status ipvs-bpfctl status
rec alert-proc cat /proc/net/ip_vs_bpf

# --- 2c. metrics.listen: one scrape of the running daemon against what ipvsadm, the control file and the D-Bus
# counters show just before and after it (no traffic runs now; retried if the table moved meanwhile)
for try in 1 2 3; do
  ipvsadm -Ln --stats --exact >"$out/metrics-stats-before.txt"
  ipvsadm -Ln >"$out/metrics-list-before.txt"
  cat /proc/net/ip_vs_bpf >"$out/metrics-proc-before.txt"
  busctl --json=short get-property "${M[@]}" DataPathCounters >"$out/metrics-dp-before.json"
  busctl --json=short get-property "${M[@]}" FlowCount >"$out/metrics-flows-before.json"
  t0=$(date +%s%N)
  rec metrics-scrape fetch_url $METRICS
  echo $((($(date +%s%N) - t0) / 1000000)) >"$out/metrics-scrape.ms"
  ipvsadm -Ln --stats --exact >"$out/metrics-stats-after.txt"
  ipvsadm -Ln >"$out/metrics-list-after.txt"
  cat /proc/net/ip_vs_bpf >"$out/metrics-proc-after.txt"
  sleep 1.5 # a status refresh (statusInterval 1) after the scrape
  busctl --json=short get-property "${M[@]}" DataPathCounters >"$out/metrics-dp-after.json"
  busctl --json=short get-property "${M[@]}" FlowCount >"$out/metrics-flows-after.json"
  cmp -s "$out/metrics-stats-before.txt" "$out/metrics-stats-after.txt" \
    && cmp -s "$out/metrics-list-before.txt" "$out/metrics-list-after.txt" && break
done
echo "$try" >"$out/metrics-tries.txt"
config bpf
rec alert-restore systemctl reload ipvs-bpf

# --- 3. a broken configuration while a flow is live: the restart fails, the data path carries on
stream_start s3
rec s3-first wait_recv s3 $((1 << 20))
snap s3-before
cp /etc/ipvs-bpf/config.json /tmp/config.good
config bpf '"xdp": { "mode": "turbo" }'
rec bad-restart systemctl restart ipvs-bpf
sleep 3
rec bad-active systemctl is-active ipvs-bpf
rec bad-restarts systemctl show -P NRestarts ipvs-bpf
rec bad-status systemctl show -P ExecMainStatus ipvs-bpf
snap s3-bad
progress s3 s3-after-bad $((1 << 20))
cp /tmp/config.good /etc/ipvs-bpf/config.json
rec good-start systemctl start ipvs-bpf
snap s3-good
progress s3 s3-after-good $((512 << 10))
stream_finish s3

# --- 3b. upgrade: changed tc and XDP objects installed where the daemon loads them, restart under a stream;
# the changed programs are replaced in place, the maps (and the flow) stay; a restart after that keeps all
stream_start s5
rec s5-first wait_recv s5 $((1 << 20))
snap s5-before
rec upgrade-install cp build/bpf-variant/ipvs_xdp.bpf.o build/bpf-variant/ipvs_tc.bpf.o \
  build/bpf-variant/ipvs_tc_kctx.bpf.o /usr/local/lib/ipvs-bpf/build/bpf/
rec upgrade-restart systemctl restart ipvs-bpf
snap s5-upgraded
progress s5 s5-after-upgrade $((2 << 20))
rec upgrade-restart-again systemctl restart ipvs-bpf
snap s5-again
progress s5 s5-after-again $((512 << 10))
rec s5-conntrack conntrack -L -s "$TOPO_CLIENT" -d "$TOPO_VIP"
stream_finish s5

# --- 4. teardown: refused while the daemon runs; after stop it removes the data path; idempotent
rec teardown-running /usr/local/sbin/ipvs-bpf --teardown
rec final-stop systemctl stop ipvs-bpf
rec metrics-stopped fetch_url $METRICS
rec teardown /usr/local/sbin/ipvs-bpf --teardown
snap torn-down
rec teardown-again /usr/local/sbin/ipvs-bpf --teardown
# plain IPVS still serves the VIP, and conntrack sees the flow again
stream_start s4
rec s4-first wait_recv s4 $((256 << 10))
rec s4-conntrack conntrack -L -s "$TOPO_CLIENT" -d "$TOPO_VIP"
stream_finish s4
exit 0
