#!/usr/bin/env bash
# Builds the addon with node-gyp against the headers of the running node
# (Debian/nodesource install them under <prefix>/include/node; no download).
set -euo pipefail
cd "$(dirname "$0")"
prefix="$(node -p "require('path').resolve(process.execPath, '../..')")"
args=(--directory . )
[ -f "$prefix/include/node/common.gypi" ] && args+=(--nodedir="$prefix")
gyp=../node_modules/.bin/node-gyp
if [ -f build/Makefile ] && [ build/Makefile -nt binding.gyp ]; then
  "$gyp" build "${args[@]}" >/dev/null
else
  "$gyp" rebuild "${args[@]}" >/dev/null
fi
