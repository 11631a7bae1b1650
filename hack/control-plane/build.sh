#!/usr/bin/env bash
# Builds (once) the control-plane binaries used by the Gatehouse e2e tests:
# kube-apiserver, kube-controller-manager and etcd.
#
# Binaries are cached in ${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}/control-plane/<k8s version>/
# and the script does nothing when they are already there, because a cold
# kube-apiserver build costs 17-30 minutes and ~2.6 GB of RAM on a 2-core machine.
#
# Prints the cache directory as its last line (so callers can do
# `bin=$(build.sh | tail -n1)`); everything else goes to stderr.
#
# Environment:
#   GATEHOUSE_CACHE        cache root (default: $HOME/.cache/gatehouse)
#   GATEHOUSE_FORCE_BUILD  set to 1 to rebuild even if the cache is populated.
#
# etcd is always built from go.etcd.io/etcd/server/v3 at the version that
# k8s.io/kubernetes pins (go.mod), so the e2e suite runs on the etcd the API
# server is tested with. A cached etcd of any other version, or a symlink
# (older versions of this script linked Debian's etcd 3.4 here), is replaced.
# To try another etcd binary, point up.sh at it with GATEHOUSE_ETCD_BIN.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
# shellcheck source=lib.sh
source "$here/lib.sh"

log() { printf '[build] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
case "${GATEHOUSE_ETCD_SOURCE:-go}" in
  go | auto) ;; # auto was the old default; building from source is what it means now
  *)
    # The apt/auto modes linked Debian bookworm's etcd 3.4.23, which Kubernetes
    # 1.37 does not support; failing beats silently testing something else.
    log "GATEHOUSE_ETCD_SOURCE=$GATEHOUSE_ETCD_SOURCE is gone: etcd is always built from source now;"
    log "to run another etcd binary, give its path to up.sh as GATEHOUSE_ETCD_BIN"
    exit 1
    ;;
esac

# The version is read from go.mod so bumping Kubernetes is a one-file change
# (plus the staging replaces); the cache key follows automatically.
k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_go_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
cache_root=${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}
out="$cache_root/control-plane/$k8s_version"
mkdir -p "$out"
# Serialise concurrent runs (e.g. two up.sh started in parallel by a test
# harness) so the second waits for the first build instead of repeating it.
exec 9>"$out/.lock"
if ! flock -n 9; then
  log "another build.sh is working on $out; waiting for it"
  flock 9
fi
# Build into a temp dir and move into place so an interrupted build never
# leaves a half-written binary that a later run would take for a cached one.
tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Stamp the binaries like the upstream release build does; without it
# /version reports v0.0.0-master and kubectl warns about version skew.
minor=${k8s_version#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w"
ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

gobuild() {
  # nice: the build saturates both cores for a quarter of an hour; keep the machine usable.
  # CGO_ENABLED=0: upstream ships static binaries and nothing here needs cgo.
  # -buildvcs=false: the module lives inside the Gatehouse git repo, whose
  # (possibly dirty) state has nothing to do with these binaries.
  CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -ldflags "$ldflags" "$@"
}

need_k8s=0
for b in kube-apiserver kube-controller-manager; do
  [[ -x "$out/$b" ]] || need_k8s=1
done
if [[ "${GATEHOUSE_FORCE_BUILD:-0}" == 1 ]]; then
  need_k8s=1
  rm -f "$out/etcd"
fi

if [[ $need_k8s == 1 ]]; then
  log "building kube-apiserver + kube-controller-manager $k8s_version into $out (cold: 17-30 min on 2 cores, ~2.6 GB RAM)"
  start=$SECONDS
  # One `go build` for both commands so shared packages compile once.
  gobuild -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  mv -f "$tmp/kube-apiserver" "$tmp/kube-controller-manager" "$out/"
  log "built kubernetes binaries in $((SECONDS - start))s"
else
  log "kube-apiserver + kube-controller-manager $k8s_version already cached in $out"
fi

build_go_etcd() {
  log "building etcd $etcd_go_version from the Go module proxy (cold: ~1.5 min)"
  local start=$SECONDS
  gobuild -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  mv -f "$tmp/etcd" "$out/etcd"
  log "built etcd in $((SECONDS - start))s"
}

want_etcd=${etcd_go_version#v}
have_etcd=""
if [[ -L "$out/etcd" ]]; then
  # Earlier versions of this script symlinked Debian's /usr/bin/etcd (3.4.23),
  # which Kubernetes 1.37 does not support; such a cache must not survive.
  log "replacing $out/etcd, a symlink to $(readlink "$out/etcd"), by etcd $want_etcd built from source"
  rm -f "$out/etcd"
elif [[ -x "$out/etcd" ]]; then
  have_etcd=$(cp_etcd_version "$out/etcd")
  if [[ "$have_etcd" != "$want_etcd" ]]; then
    log "cached etcd is ${have_etcd:-unreadable}, go.mod pins $want_etcd: rebuilding it"
    rm -f "$out/etcd"
    have_etcd=""
  fi
fi
if [[ -n "$have_etcd" ]]; then
  log "etcd $have_etcd already cached in $out"
else
  build_go_etcd
  have_etcd=$(cp_etcd_version "$out/etcd")
  [[ "$have_etcd" == "$want_etcd" ]] || { log "built etcd reports version '${have_etcd}', expected $want_etcd"; exit 1; }
fi

log "binaries: $(cd "$out" && echo etcd kube-apiserver kube-controller-manager)"
echo "$out"
