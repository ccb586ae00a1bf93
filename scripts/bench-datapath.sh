#!/usr/bin/env bash
# npm run bench:datapath — data-path micro-benchmarks (BPF_PROG_TEST_RUN, repeat >= 1e6).
# Last line: one JSON object. The veth pps comparison (fastpath_pps / iptables_pps) is not
# implemented yet and is reported as null.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
tr=$(taskset -c 1 node scripts/bench-datapath-testrun.js)
node -e '
const t = JSON.parse(process.argv[1]);
console.log(JSON.stringify({ xdp_hit_ns: t.xdp_hit_ns, tc_snat_ns: t.tc_snat_ns, empty_ns: t.empty_ns,
  tc_empty_ns: t.tc_empty_ns, fastpath_pps: null, iptables_pps: null, pps_ratio: null }));' "$tr"
