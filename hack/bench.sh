#!/usr/bin/env bash
# The load benchmark of issue 14, from a fresh clone, in one command:
#
#   hack/bench.sh                      # N=1000 approvals, M=1000 expiries, L=10000 live grants
#   hack/bench.sh --quick              # 200/200/200, a few minutes
#   hack/bench.sh --live 2000          # any flag of the bench; hack/bench.sh --help lists them
#
# Builds the operator (with jemalloc, as the image does: feature `jemalloc`)
# and the bench in release (`cargo bench` uses the bench profile), starts a
# throwaway control plane with hack/control-plane/up.sh (etcd + kube-apiserver
# + kube-controller-manager, built and cached on first use), runs
# benches/load against it, stops the control plane, and prints where the
# report is. Exits non-zero if the bench failed (an error, or a request that
# never got its binding); missed timing targets are reported, never a failure.
#
# Environment:
#   GATEHOUSE_BENCH_OUT  directory for report.txt, report.json, the operator logs
#                        and the control plane's state (default: a new /tmp/gatehouse-bench.XXXXXX)
#   GATEHOUSE_BENCH_OPERATOR  another operator binary to run instead of the one built
#                        here (an older commit's, to compare two builds with the same bench)
#   CARGO_TARGET_DIR, and whatever hack/control-plane/up.sh reads.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
log() { printf '[bench] %s\n' "$*" >&2; }

for arg in "$@"; do
  if [[ $arg == -h || $arg == --help ]]; then
    exec cargo bench --locked --features jemalloc --bench load -- --help
  fi
done

out=${GATEHOUSE_BENCH_OUT:-$(mktemp -d /tmp/gatehouse-bench.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
state=$out/control-plane

log "building the operator and the bench in release (the first build takes a while)"
cargo bench --locked --features jemalloc --bench load --no-run

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { "$repo/hack/control-plane/down.sh" "$state" >/dev/null 2>&1 || true; }
trap cleanup EXIT
eval "$(hack/control-plane/up.sh "$state")"
export GATEHOUSE_E2E_KUBECONFIG

log "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
cargo bench --locked --features jemalloc --bench load -- "$@" --json "$out/report.json" --logs "$out" |
  tee "$out/report.txt" || status=$?

log "report: $out/report.txt (and report.json; operator logs in $out)"
exit "$status"
