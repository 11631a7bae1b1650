#!/usr/bin/env bash
# Stops the control plane that up.sh started in DIR, by the PIDs it recorded
# in DIR/pids: SIGTERM first, SIGKILL after a grace period. Idempotent: a
# missing pids file or already-dead processes are not errors. DIR itself
# (logs, kubeconfig, etcd data) is kept for post-mortems; up.sh wipes it.
#
# Usage: down.sh DIR
# Environment: GATEHOUSE_DOWN_GRACE  seconds between TERM and KILL, per process (default 10)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
log() { printf '[down] %s\n' "$*" >&2; }

[[ $# -eq 1 ]] || { log "usage: $0 DIR"; exit 1; }
if [[ ! -d "$1" ]]; then
  log "$1 does not exist; nothing to stop"
  exit 0
fi
dir=$(cd "$1" && pwd)
pids_file=$dir/pids
grace=${GATEHOUSE_DOWN_GRACE:-10}

if [[ ! -s "$pids_file" ]]; then
  log "no $pids_file; nothing to stop"
  rm -f "$pids_file"
  exit 0
fi

# A PID from an old run may have been reused by an unrelated process; only
# signal it if its command line still mentions this state directory.
ours() { cp_ours "$dir" "$1"; }

# Stop one at a time in reverse start order (controller-manager, apiserver,
# etcd) and wait for each: an apiserver whose etcd vanishes underneath it
# spends its whole grace period retrying etcd instead of shutting down.
mapfile -t entries < <(tac "$pids_file")
for entry in "${entries[@]}"; do
  read -r name pid <<<"$entry"
  if ! ours "$pid"; then
    log "$name (pid $pid) is not running"
    continue
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    ours "$pid" || break
    sleep 0.1
  done
  if ours "$pid"; then
    log "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

rm -f "$pids_file"
log "stopped"
