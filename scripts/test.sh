#!/usr/bin/env bash
# The one test command (`npm test`): set-up, static checks, unit tests, then lab tests
# (host netns + the lab VM with real IPVS).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The kube tests' kube-apiserver, kube-proxy and etcd (scripts/kube-tools.sh) take ~20 min to build cold:
# start that now, at low priority beside the other tests; the kube tests wait for it (the script's flock).
if ! bash scripts/kube-tools.sh --check >/dev/null 2>&1; then
  echo "test: building the kube test tools in the background (scripts/kube-tools.sh)" >&2
  nice -n 10 bash scripts/kube-tools.sh >/dev/null 2>&1 &
fi
npx --no-install eslint src test
npx --no-install jest --ci --selectProjects unit lab --runInBand "$@"
