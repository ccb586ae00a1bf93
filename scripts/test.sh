#!/usr/bin/env bash
# The one test command (`npm test`): set-up, static checks, unit tests, then lab tests
# (host netns + the lab VM with real IPVS).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx --no-install eslint src test
npx --no-install jest --ci --selectProjects unit lab --runInBand "$@"
