#!/usr/bin/env bash
# Builds the real Kubernetes control plane the kube tests run against, and the real kube-proxy they compare
# with, from the Go modules pinned under test/kube-tools/ (no release binaries can be downloaded here):
#   test/kube-tools/kubernetes/go.{mod,sum}  k8s.io/kubernetes (kube-apiserver, kube-proxy)
#   test/kube-tools/etcd/go.{mod,sum}        go.etcd.io/etcd/server/v3 (etcd)
# and prints where they are as KEY=VALUE lines on stdout:
#   KUBE_TOOLS_DIR=<cache entry>  KUBE_APISERVER=<path>  KUBE_PROXY=<path>  ETCD=<path>
#   KUBERNETES_VERSION=v1.34.4  ETCD_VERSION=v3.6.17
#
# The binaries are cached outside the checkout, keyed by the versions, in
# $KUBE_TOOLS_CACHE/k8s-<version>_etcd-<version>/ (default /var/cache/ipvs-bpf/kube), so every clone and CI
# run on this machine reuses them. An entry counts only if its stamp (written last) names the same cache
# format, Go version and hash of the four pin files; anything else is rebuilt. A cold build takes about
# 20 minutes on 2 cores (the Go module and build caches make a rebuild faster). An flock on the entry's
# lock makes a second caller wait for a running build instead of starting its own; the build's output goes
# to <entry>.log (the error message names it).
#
# Usage: kube-tools.sh [--check] [--help]
#   --check   exit 0 when the cache entry is valid (and print it), 1 when a build is needed; builds nothing
# Environment: KUBE_TOOLS_CACHE, GO (the go command; default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail

readonly CACHE_FORMAT=1   # bump when the layout of an entry or the build flags change

die() { echo "kube-tools: $*" >&2; exit 1; }
log() { echo "kube-tools: $*" >&2; }

check=0
case "${1:-}" in
  --check) check=1 ;;
  '') ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

here=$(cd "$(dirname "$0")/.." && pwd)
pins=$here/test/kube-tools
cache=${KUBE_TOOLS_CACHE:-/var/cache/ipvs-bpf/kube}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$go" ] || die "no Go toolchain ('$go'); the machine's Go 1.26 is a prerequisite (README)"

# The required version of a module in a pin file: `require M vX` or a `M vX` line of a require block.
required_version() { # $1 = go.mod, $2 = module path
  awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' "$1"
}
k8s_version=$(required_version "$pins/kubernetes/go.mod" k8s.io/kubernetes)
etcd_version=$(required_version "$pins/etcd/go.mod" go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] || die "$pins/kubernetes/go.mod requires no k8s.io/kubernetes"
[ -n "$etcd_version" ] || die "$pins/etcd/go.mod requires no go.etcd.io/etcd/server/v3"

go_version=$(GOTOOLCHAIN=local "$go" env GOVERSION)
key=$(cat "$pins"/kubernetes/go.mod "$pins"/kubernetes/go.sum "$pins"/etcd/go.mod "$pins"/etcd/go.sum | sha256sum | cut -c1-16)
entry=$cache/k8s-${k8s_version}_etcd-${etcd_version}
want_stamp="format=$CACHE_FORMAT go=$go_version pins=$key"

print_entry() {
  echo "KUBE_TOOLS_DIR=$entry"
  echo "KUBE_APISERVER=$entry/bin/kube-apiserver"
  echo "KUBE_PROXY=$entry/bin/kube-proxy"
  echo "ETCD=$entry/bin/etcd"
  echo "KUBERNETES_VERSION=$k8s_version"
  echo "ETCD_VERSION=$etcd_version"
}
valid() {
  [ "$(cat "$entry/stamp" 2>/dev/null)" = "$want_stamp" ] &&
    [ -x "$entry/bin/kube-apiserver" ] && [ -x "$entry/bin/kube-proxy" ] && [ -x "$entry/bin/etcd" ]
}

if valid; then print_entry; exit 0; fi
((check == 0)) || { log "no valid build in $entry"; exit 1; }

mkdir -p "$cache"
exec 9>"$entry.lock"
if ! flock -n 9; then
  log "another build of $entry is running; waiting for it"
  flock 9
fi
if valid; then print_entry; exit 0; fi   # built while we waited

buildlog=$entry.log
log "building kube-apiserver, kube-proxy $k8s_version and etcd $etcd_version into $entry (log: $buildlog)"
rm -rf "$entry" && mkdir -p "$entry/bin"
# Static, stripped, path-free binaries like the release builds (CGO off); the version variables are the
# ones k8s's own build sets, so the apiserver reports v1.34.x rather than v0.0.0-master.
minor=${k8s_version#v*.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build() { # $1 = pin dir, $2 = output, $3 = ldflags, $4 = package
  (cd "$1" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
     "$go" build -trimpath -ldflags "$3" -o "$2" "$4")
}
started=$(date +%s)
{
  build "$pins/etcd" "$entry/bin/etcd" "-s -w" go.etcd.io/etcd/server/v3 &&
    build "$pins/kubernetes" "$entry/bin/kube-proxy" "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-proxy &&
    build "$pins/kubernetes" "$entry/bin/kube-apiserver" "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver
} >"$buildlog" 2>&1 || die "the build failed (exit $?); see $buildlog: $(tail -n 5 "$buildlog" | tr '\n' ' ')"
echo "$want_stamp" >"$entry/stamp"
log "built in $(( $(date +%s) - started )) s"
print_entry
