#!/usr/bin/env bash
# npm run bench:datapath — data-path benchmarks, pinned to CPU 1:
#  1. ns/packet by BPF_PROG_TEST_RUN (repeat >= 1e6): XDP hit (FWD; REPLY as xdp_reply_ns),
#     tc SNAT, empty programs; scripts/bench-datapath-parts.js splits them into parts
#  2. packets/s through a veth LB namespace: XDP fast path vs iptables DNAT+MASQUERADE
#     (nf_conntrack), same run, trials interleaved (scripts/bench-datapath-pps.js)
# Last line: one JSON object with all figures. On a shared machine run it several times.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
echo "load: $(uptime)" >&2
tr=$(taskset -c 1 node scripts/bench-datapath-testrun.js)
pps=$(taskset -c 1 node scripts/bench-datapath-pps.js)
node -e '
const t = JSON.parse(process.argv[1]);
const p = JSON.parse(process.argv[2]);
console.log(JSON.stringify({ xdp_hit_ns: t.xdp_hit_ns, tc_snat_ns: t.tc_snat_ns, empty_ns: t.empty_ns,
  tc_empty_ns: t.tc_empty_ns, xdp_reply_ns: t.xdp_reply_ns, ...p }));' "$tr" "$pps"
