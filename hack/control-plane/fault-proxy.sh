#!/usr/bin/env bash
# Network faults between one client (e.g. one operator replica) and the
# kube-apiserver of the control plane that up.sh started in DIR, through a
# loopback TCP proxy (faultproxy/main.go) that the client's kubeconfig points at.
#
# Usage:
#   fault-proxy.sh DIR start NAME      start proxy NAME; prints the path of its kubeconfig,
#                                      DIR/proxy-NAME.kubeconfig (DIR/kubeconfig with the
#                                      proxy's port; same users and contexts)
#   fault-proxy.sh DIR partition NAME  the API server goes silent for this client: open
#                                      connections stall, new ones hang in the TLS handshake;
#                                      nothing is refused or reset
#   fault-proxy.sh DIR heal NAME       traffic flows again; held bytes and connections resume
#   fault-proxy.sh DIR drop NAME       reset (RST) every open connection now, e.g. a watch mid-stream
#   fault-proxy.sh DIR status NAME     JSON: partitioned, open/accepted/dropped connections
#   fault-proxy.sh DIR stop NAME       stop the proxy (down.sh also stops it)
#
# Each command returns once the change is in effect. Other clients (kubectl
# with DIR/kubeconfig, kube-controller-manager, another replica with its own
# proxy) are not affected. The proxy is recorded in DIR/pids as proxy-NAME.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
log() { printf '[fault-proxy] %s\n' "$*" >&2; }
die() { printf '[fault-proxy] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 3 ]] || die "usage: $0 DIR start|partition|heal|drop|status|stop NAME"
[[ -d "$1" ]] || die "$1 does not exist"
dir=$(cd "$1" && pwd)
cmd=$2
name=$3
[[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "NAME must be lowercase letters, digits and dashes, got '$name'"
[[ -s "$dir/env" ]] || die "$dir/env is missing: start the control plane with up.sh first"
# shellcheck source=/dev/null
source "$dir/env"
sock=$dir/proxy-$name.sock
entry=proxy-$name

# The proxy is built from source like the rest (stdlib only, ~1 s with a warm
# Go cache) and cached under a name that changes with its source.
proxy_bin() {
  local src=$here/faultproxy sum out
  sum=$(cat "$src/go.mod" "$src/main.go" | sha256sum | cut -c1-12)
  out=${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}/control-plane/faultproxy-$sum
  if [[ ! -x "$out" ]]; then
    log "building faultproxy into $out"
    mkdir -p "$(dirname "$out")"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp.$$" .) >&2
    mv -f "$out.tmp.$$" "$out"
  fi
  echo "$out"
}

ctl() {
  local pid
  pid=$(cp_pid_of "$dir" "$entry")
  cp_ours "$dir" "$pid" || die "proxy $name is not running (start it with: $0 $dir start $name)"
  curl -fsS --max-time 10 --unix-socket "$sock" -X "$1" "http://faultproxy$2"
  echo
}

case $cmd in
  start)
    if cp_ours "$dir" "$(cp_pid_of "$dir" "$entry")"; then
      die "proxy $name is already running"
    fi
    [[ -s "$dir/pids" ]] || die "$dir/pids is missing: the control plane is not running"
    bin=$(proxy_bin)
    rm -f "$dir/proxy-$name.port"
    pid=$(cp_start "$dir" "$entry" new "$bin" -listen 127.0.0.1:0 \
      -upstream "127.0.0.1:$GATEHOUSE_E2E_APISERVER_PORT" \
      -control "$sock" -port-file "$dir/proxy-$name.port")
    for ((i = 0; i < 100; i++)); do
      [[ -s "$dir/proxy-$name.port" && -S "$sock" ]] && break
      kill -0 "$pid" 2>/dev/null || { cat "$dir/$entry.log" >&2; die "proxy $name exited"; }
      sleep 0.05
    done
    [[ -s "$dir/proxy-$name.port" ]] || die "proxy $name did not report its port (see $dir/$entry.log)"
    port=$(cat "$dir/proxy-$name.port")
    kubeconfig=$dir/proxy-$name.kubeconfig
    sed "s#server: $GATEHOUSE_E2E_SERVER\$#server: https://127.0.0.1:$port#" "$dir/kubeconfig" >"$kubeconfig"
    chmod 600 "$kubeconfig"
    grep -q "server: https://127.0.0.1:$port\$" "$kubeconfig" || die "could not rewrite the server in $kubeconfig"
    log "proxy $name (pid $pid): 127.0.0.1:$port -> 127.0.0.1:$GATEHOUSE_E2E_APISERVER_PORT; kubeconfig $kubeconfig"
    echo "$kubeconfig"
    ;;
  partition) ctl POST /partition ;;
  heal) ctl POST /heal ;;
  drop) ctl POST /drop ;;
  status) ctl GET /status ;;
  stop)
    pid=$(cp_pid_of "$dir" "$entry")
    if cp_ours "$dir" "$pid"; then
      kill -TERM "$pid"
      while cp_ours "$dir" "$pid"; do sleep 0.05; done
      log "stopped proxy $name (pid $pid)"
    else
      log "proxy $name is not running"
    fi
    ;;
  *) die "unknown command '$cmd' (want start|partition|heal|drop|status|stop)" ;;
esac
