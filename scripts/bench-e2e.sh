#!/usr/bin/env bash
# npm run bench:e2e — short-connection rate and p99 latency through IPVS-BPF vs plain IPVS NAT +
# MASQUERADE, in one lab-VM boot (see test/bench/e2e-bench.ts). Last line: one JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec node dist/test/bench/e2e-bench.js "$@"
