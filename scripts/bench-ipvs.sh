#!/usr/bin/env bash
# npm run bench:ipvs — ipvs-bpfctl vs ipvsadm on real IPVS in the lab VM (see test/bench/ipvs-bench.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/test/bench/ipvs-bench.js "$@"
