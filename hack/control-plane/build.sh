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
#   GATEHOUSE_ETCD_SOURCE  auto (default) | apt | go
#       auto: use Debian's etcd-server if it is installed or installable
#             (needs root + apt), otherwise build etcd from the Go module proxy.
#       apt:  require Debian's etcd-server.
#       go:   build go.etcd.io/etcd/server/v3 at the version k8s.io/kubernetes pins.
#   GATEHOUSE_FORCE_BUILD  set to 1 to rebuild even if the cache is populated.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

log() { printf '[build] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

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

debian_etcd_installable() {
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
  # apt-cache only knows the package after `apt-get update`; an empty
  # candidate means "not available", not "not installed".
  local cand
  cand=$(apt-cache policy etcd-server 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [[ -z "$cand" || "$cand" == "(none)" ]]; then
    log "etcd-server not in the apt lists, running apt-get update"
    apt-get update -qq >&2 || return 1
    cand=$(apt-cache policy etcd-server 2>/dev/null | awk '/Candidate:/ {print $2}')
  fi
  [[ -n "$cand" && "$cand" != "(none)" ]]
}

install_debian_etcd() {
  log "installing Debian's etcd-server with apt-get"
  # policy-rc.d 101 stops the package from starting a system etcd on
  # 127.0.0.1:2379, which would be a stray daemon nobody asked for.
  local prc=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $prc ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc" && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >&2
  local rc=$?
  [[ $created == 1 ]] && rm -f "$prc"
  return $rc
}

build_go_etcd() {
  log "building etcd $etcd_go_version from the Go module proxy"
  local start=$SECONDS
  gobuild -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  mv -f "$tmp/etcd" "$out/etcd"
  log "built etcd in $((SECONDS - start))s"
}

if [[ -x "$out/etcd" ]]; then
  log "etcd already cached in $out ($("$out/etcd" --version 2>/dev/null | head -n1))"
else
  source=${GATEHOUSE_ETCD_SOURCE:-auto}
  case "$source" in
    apt | auto)
      if [[ -x /usr/bin/etcd ]] || { debian_etcd_installable && install_debian_etcd; }; then
        # A symlink, not a copy: if the package is removed the link dangles,
        # -x fails and the next run falls back to rebuilding.
        ln -sf /usr/bin/etcd "$out/etcd"
        log "using Debian's etcd: $(/usr/bin/etcd --version | head -n1)"
      elif [[ "$source" == apt ]]; then
        log "GATEHOUSE_ETCD_SOURCE=apt but Debian's etcd-server could not be installed"
        exit 1
      else
        build_go_etcd
      fi
      ;;
    go) build_go_etcd ;;
    *) log "unknown GATEHOUSE_ETCD_SOURCE=$source (want auto|apt|go)"; exit 1 ;;
  esac
fi

log "binaries: $(cd "$out" && echo etcd kube-apiserver kube-controller-manager)"
echo "$out"
