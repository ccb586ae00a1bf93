#!/usr/bin/env bash
# npm run bench:datapath — data-path benchmarks, pinned to CPU 1:
#  1. ns/packet by BPF_PROG_TEST_RUN (repeat >= 1e6): XDP hit (FWD; REPLY as xdp_reply_ns; with the
#     next-hop cache missing on every packet as xdp_nh_miss_ns), tc SNAT, empty programs, and each
#     path's floor in the same trials (xdp_floor_ns: our key's conntrack lookup + bpf_redirect_map;
#     tc_floor_ns: the lookup + the checksum helper if the loaded tc build needs one), with the ratios
#     xdp_hit_ratio = xdp_hit_ns / xdp_floor_ns and tc_snat_ratio = tc_snat_ns / tc_floor_ns
#     (goal <= 1.15); scripts/bench-datapath-parts.js splits the paths into parts
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
  tc_empty_ns: t.tc_empty_ns, xdp_reply_ns: t.xdp_reply_ns, xdp_floor_ns: t.xdp_floor_ns, tc_floor_ns: t.tc_floor_ns,
  xdp_hit_ratio: t.xdp_hit_ratio, tc_snat_ratio: t.tc_snat_ratio, xdp_nh_miss_ns: t.xdp_nh_miss_ns,
  xdp_nh_miss_ratio: t.xdp_nh_miss_ratio, xdp_lookup_ns: t.xdp_lookup_ns, tc_floor_helper: t.tc_floor_helper, ...p }));' "$tr" "$pps"
