#!/usr/bin/env bash
# Measures a certification campaign launch of N items (default 5000) on a real
# control plane while a JIT grant expires and another one is granted: how long
# the launch takes, and whether grants and revokes slow down meanwhile.
#
# Usage: hack/certify-launch.sh KUBECONFIG [N]
#   KUBECONFIG  admin kubeconfig of a control plane (hack/control-plane/up.sh DIR
#               prints GATEHOUSE_E2E_KUBECONFIG); users alice (developers) and
#               bob (sre) are impersonated.
#   N           bindings (one subject each) the campaign reviews; 0 measures the
#               grant and the revoke alone, as a baseline.
# Environment: GATEHOUSE_BIN (default target/debug/gatehouse, or
#   $CARGO_TARGET_DIR/debug/gatehouse); OPERATOR_ARGS: more `gatehouse run` flags.
#
# It installs the chart's CRDs and admission policies, creates a namespace
# certify-bench-TIME with N RoleBindings, runs `gatehouse run` (defaults:
# --concurrency 64, --certification-concurrency 8, launch parallelism 8) and:
#   t0-10s  alice's request for 40 s is approved: its binding expires at t0;
#   t0-6s   the campaign is created (it runs at once) and launches N items;
#   t0-3s   a second request of alice is approved (the grant to watch);
# then waits for the launch, every item's first evaluation, the expired binding
# to go, and prints the figures as JSON. It deletes what it made at the end
# (KEEP=1 keeps it): run it on a control plane without other campaigns, as an
# operator reconciles every item in the cluster when it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: $0 KUBECONFIG [N]" >&2; exit 2; }
kc=$1
n=${2:-5000}
bin=${GATEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/debug/gatehouse}
[[ -x $bin ]] || { echo "no gatehouse binary at $bin (cargo build)" >&2; exit 1; }
tools=$(hack/control-plane/tools.sh | tail -n1)
k() { "$tools/kubectl" --kubeconfig "$kc" "$@"; }
now() { date -u +%s.%N; }
sleep_until() { python3 -c "import time; time.sleep(max(0.0, $1 - time.time()))"; }
ns=certify-bench-$(date -u +%s)
work=$(mktemp -d /tmp/certify-bench.XXXXXX)
log() { printf '[certify-launch] %s\n' "$*" >&2; }

log "installing the chart's CRDs and admission policies"
"$tools/helm" template gatehouse charts/gatehouse -n gatehouse-system \
  --show-only templates/crds.yaml --show-only templates/admission.yaml >"$work/install.yaml"
k apply --server-side --force-conflicts -f "$work/install.yaml" >/dev/null
k wait --for condition=Established crd --all >/dev/null
k create namespace "$ns" >/dev/null
# People: alice requests, bob reviews; what they need and nothing more (the
# e2e suite relies on bob holding no virtual verbs on this cluster).
k apply --server-side -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $ns-people}
rules:
- {apiGroups: [gatehouse.dev], resources: [approvalrequests, accessreviews], verbs: [create, get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $ns-people}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $ns-people}
subjects:
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
- {kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}
EOF

log "creating $n RoleBindings in $ns"
python3 - "$ns" "$n" "$work" <<'EOF'
import json, sys
ns, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for batch in range(0, n, 500):
    items = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": f"standing-{i:05d}", "namespace": ns, "labels": {"bench": ns}},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
              "subjects": [{"kind": "User", "name": f"user-{i:05d}", "apiGroup": "rbac.authorization.k8s.io"}]}
             for i in range(batch, min(n, batch + 500))]
    with open(f"{work}/bindings-{batch:05d}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
EOF
for f in "$work"/bindings-*.json; do [[ -e $f ]] && k create -f "$f" >/dev/null; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KUBECONFIG=$kc RUST_LOG=info NO_COLOR=1 "$bin" run --http-addr "127.0.0.1:$port" --leader-election=false \
  --log-format text ${OPERATOR_ARGS:-} >"$work/operator.log" 2>&1 &
operator=$!
cleanup() {
  if [[ -z ${KEEP:-} ]]; then
    k delete accesscampaign "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    k delete accesspolicy "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    k delete clusterrolebinding,clusterrole "$ns-people" --ignore-not-found >/dev/null 2>&1 || true
    # The operator releases its finalizers on the requests before it stops.
    k wait --for=delete approvalrequests --all -n "$ns" --timeout=60s >/dev/null 2>&1 || true
  fi
  kill "$operator" 2>/dev/null || true
}
trap cleanup EXIT
until curl -fsS "127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.2; done
log "operator ready (log $work/operator.log)"

k apply -f - >/dev/null <<EOF
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: $ns}
spec:
  requesters: {users: [alice]}
  roles: [{kind: ClusterRole, name: view}]
  namespaces: {names: [$ns]}
  duration: {default: 40s, max: 1h}
  approval: {reviewers: {users: [bob]}}
EOF
request() { # NAME DURATION
  k --as alice create -f - -o jsonpath='{.metadata.uid}' <<EOF
apiVersion: gatehouse.dev/v1alpha1
kind: ApprovalRequest
metadata: {name: $1, namespace: $ns}
spec: {requester: {username: alice}, role: {kind: ClusterRole, name: view}, duration: $2, reason: bench}
EOF
}
approve() { # NAME UID
  k --as bob create -f - >/dev/null <<EOF
apiVersion: gatehouse.dev/v1alpha1
kind: AccessReview
metadata: {name: $1-bob, namespace: $ns}
spec: {request: {name: $1, uid: $2}, decision: Approve, reviewer: {username: bob}}
EOF
}
phase() { k get approvalrequest -n "$ns" "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
until_phase() { until [[ "$(phase "$1")" == "$2" ]]; do sleep 0.1; done; }

uid=$(request expiring 40s)
until_phase expiring Pending
approve expiring "$uid"
until_phase expiring Active
expires=$(k get approvalrequest -n "$ns" expiring -o jsonpath='{.status.grant.expiresAt}')
grant=$(k get approvalrequest -n "$ns" expiring -o jsonpath='{.status.grant.name}')
t0=$(date -u -d "$expires" +%s.%N)
uid2=$(request granted 1h)
until_phase granted Pending
log "the grant expires at $expires; launching the campaign 6 s before"
sleep_until "$t0 - 6"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
machine() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; } # busy ticks, all cores
op_cpu_before=$(cpu "$operator"); machine_before=$(machine)
campaign_created=$(now)
k apply -f - >/dev/null <<EOF
apiVersion: gatehouse.dev/v1alpha1
kind: AccessCampaign
metadata: {name: $ns}
spec:
  duration: 1h
  reviewNamespace: $ns
  scope: {bindingSelector: {matchLabels: {bench: $ns}}}
  reviewers: {levels: [{name: security, groups: [security]}]}
EOF
sleep_until "$t0 - 3"
approved_at=$(now)
approve granted "$uid2"
until_phase granted Active
granted_at=$(now)
until ! k get rolebinding -n "$ns" "$grant" >/dev/null 2>&1; do sleep 0.1; done
gone_seen=$(now)
load_during=$(cut -d' ' -f1-3 /proc/loadavg)
if (( n > 0 )); then
  until [[ -n "$(k get accesscampaign "$ns" -o jsonpath='{.status.runs[0].launchedAt}')" ]]; do sleep 0.2; done
  launched=$(k get accesscampaign "$ns" -o jsonpath='{.status.runs[0].launchedAt}')
  items=$(k get accesscampaign "$ns" -o jsonpath='{.status.runs[0].items}')
  until [[ $(k get accesscertifications -n "$ns" -o jsonpath='{range .items[*]}{.status.recommendation}{"\n"}{end}' | grep -c .) -ge $n ]]; do sleep 1; done
  evaluated=$(now)
  op_cpu_after=$(cpu "$operator"); machine_after=$(machine)
else
  op_cpu_after=$op_cpu_before; machine_after=$machine_before
  launched=""; items=0; evaluated=$campaign_created
fi
removed=$(grep 'binding removed' "$work/operator.log" | grep 'request=expiring' | head -n1 | cut -d' ' -f1)
active=$(grep 'phase changed' "$work/operator.log" | grep 'request=granted' | grep 'to=Active' | head -n1 | cut -d' ' -f1)
python3 - <<EOF
import json
from datetime import datetime
def ts(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
out = {
  "bindings": $n, "items": int("$items" or 0),
  "launch_seconds": round(ts("$launched") - $campaign_created, 2) if "$launched" else None,
  "first_evaluation_of_every_item_seconds": round($evaluated - $campaign_created, 2) if $n else None,
  "expired_binding_removed_after_expiry_ms": round((ts("$removed") - ts("$expires")) * 1000),
  "approval_sent_to_active_ms": round((ts("$active") - $approved_at) * 1000),
  "approval_sent_to_active_seen_by_kubectl_ms": round(($granted_at - $approved_at) * 1000),
  "load_average_before": "$load_before", "load_average_after_revoke": "$load_during",
  "operator_cpu_seconds_until_every_item_evaluated": round(($op_cpu_after - $op_cpu_before) / $(getconf CLK_TCK), 1),
  "machine_busy_cpu_seconds_until_every_item_evaluated": round(($machine_after - $machine_before) / $(getconf CLK_TCK), 1),
  "cores": $(nproc),
  "operator_args": "${OPERATOR_ARGS:-}",
  "operator_log": "$work/operator.log",
}
print(json.dumps(out, indent=2))
EOF
