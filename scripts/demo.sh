#!/usr/bin/env bash
# npm run demo — the main job on the embedded default: the lab VM (see test/demo/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/test/demo/demo.js "$@"
