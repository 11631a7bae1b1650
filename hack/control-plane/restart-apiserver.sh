#!/usr/bin/env bash
# Restarts the kube-apiserver of the control plane that up.sh started in DIR,
# as a cluster upgrade or a certificate rotation does: stops it, optionally
# stays down DOWNTIME seconds, starts it again with exactly the same flags
# (lib.sh builds them from DIR/env, as up.sh did) on the same etcd data, and
# waits for /readyz. etcd and kube-controller-manager are left running.
#
# Usage: restart-apiserver.sh DIR [DOWNTIME]      (DOWNTIME in seconds, default 0, may be fractional)
#
# Prints on stdout, for `eval`, the wall-clock times (Unix seconds, ms precision):
#   GATEHOUSE_APISERVER_STOPPED_AT=...   the old process has exited
#   GATEHOUSE_APISERVER_STARTED_AT=...   the new process was started
#   GATEHOUSE_APISERVER_READY_AT=...     /readyz answered 200
# Progress goes to stderr. DIR/pids keeps the new PID on the kube-apiserver
# line (same position), so down.sh stops everything as before; the new run's
# output is appended to DIR/kube-apiserver.log after a "restarted" marker.
#
# Environment:
#   GATEHOUSE_RESTART_SIGNAL  TERM (default: graceful shutdown, as in a rolling
#                             upgrade) or KILL (a crash; connections are reset at once)
#   GATEHOUSE_UP_TIMEOUT      seconds to wait for the old process to exit and
#                             for /readyz (default 60)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
log() { printf '[restart-apiserver] %s\n' "$*" >&2; }
die() { printf '[restart-apiserver] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%3N; }

[[ $# -eq 1 || $# -eq 2 ]] || die "usage: $0 DIR [DOWNTIME_SECONDS]"
[[ -d "$1" ]] || die "$1 does not exist"
dir=$(cd "$1" && pwd)
downtime=${2:-0}
[[ "$downtime" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DOWNTIME must be a number of seconds, got '$downtime'"
signal=${GATEHOUSE_RESTART_SIGNAL:-TERM}
[[ $signal == TERM || $signal == KILL ]] || die "GATEHOUSE_RESTART_SIGNAL must be TERM or KILL, got '$signal'"
limit=${GATEHOUSE_UP_TIMEOUT:-60}

[[ -s "$dir/env" && -s "$dir/pids" ]] || die "$dir has no env/pids: not a control plane started by up.sh (or stopped by down.sh)"
# shellcheck source=/dev/null
source "$dir/env"
[[ -n "${GATEHOUSE_E2E_APISERVER_PORT:-}" ]] || die "$dir/env predates restart support; run up.sh $dir again"

old=$(cp_pid_of "$dir" kube-apiserver)
if cp_ours "$dir" "$old"; then
  log "stopping kube-apiserver (pid $old) with SIG$signal"
  stop_begin=$(now)
  kill "-$signal" "$old" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    cp_ours "$dir" "$old" || break
    sleep 0.1
  done
  if cp_ours "$dir" "$old"; then
    log "kube-apiserver (pid $old) still running after ${limit}s; sending SIGKILL"
    kill -KILL "$old" 2>/dev/null || true
    while cp_ours "$dir" "$old"; do sleep 0.1; done
  fi
else
  log "kube-apiserver (pid ${old:-none}) was not running; starting it"
fi
stopped_at=$(now)
log "kube-apiserver is down$([[ -n "${stop_begin:-}" ]] && awk -v a="$stop_begin" -v b="$stopped_at" 'BEGIN {printf " (exited %.1fs after the signal)", b - a}')"

if [[ $downtime != 0 ]]; then
  log "staying down for ${downtime}s"
  sleep "$downtime"
fi
# down.sh removes DIR/pids: if it ran meanwhile, starting the API server again
# would leave an orphan that nothing stops.
[[ -s "$dir/pids" ]] || die "$dir/pids is gone (down.sh ran during the downtime); not starting kube-apiserver"

# The old process's connections to a client that stopped reading (a partitioned
# one) may keep its port after it exited (sockets in FIN_WAIT with unsent data);
# the new one then cannot listen. Try again for a while, as a supervisor would.
for ((attempt = 1; ; attempt++)); do
  new=$(cp_start_apiserver "$dir" append)
  started_at=$(now)
  log "started kube-apiserver (pid $new) with the flags up.sh used"
  rc=0
  cp_wait_apiserver_ready "$dir" "$new" "$limit" || rc=$?
  if [[ $rc == 1 && $attempt -lt 60 ]] && tail -n 5 "$dir/kube-apiserver.log" | grep -q 'address already in use'; then
    log "port $GATEHOUSE_E2E_APISERVER_PORT still held by the old process's connections; trying again in 1s"
    sleep 1
    continue
  fi
  break
done
case $rc in
  0) ;;
  1) tail -n 30 "$dir/kube-apiserver.log" >&2; die "kube-apiserver exited before becoming ready (see $dir/kube-apiserver.log)" ;;
  *) tail -n 30 "$dir/kube-apiserver.log" >&2; die "kube-apiserver not ready within ${limit}s (see $dir/kube-apiserver.log)" ;;
esac
ready_at=$(now)
log "kube-apiserver ready at $GATEHOUSE_E2E_SERVER: down $(awk -v a="$stopped_at" -v b="$started_at" 'BEGIN {printf "%.1f", b - a}')s, ready $(awk -v a="$started_at" -v b="$ready_at" 'BEGIN {printf "%.1f", b - a}')s after start"
echo "GATEHOUSE_APISERVER_STOPPED_AT=$stopped_at"
echo "GATEHOUSE_APISERVER_STARTED_AT=$started_at"
echo "GATEHOUSE_APISERVER_READY_AT=$ready_at"
