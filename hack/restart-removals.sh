#!/usr/bin/env bash
# Process start → first removal after a restart (issue 24): N operator-made
# RoleBindings that expired while no operator ran, then `gatehouse run`
# started; prints how long from the start of the process to the first
# removal, to the end of its list of RoleBindings, and to the last binding
# gone (polled every 100 ms).
#
#   hack/restart-removals.sh BINARY [N]     # N=1000; KUBECONFIG: an admin kubeconfig
#
# Use it on a throwaway control plane (hack/control-plane/up.sh): it installs
# the CRDs, and works in the namespace `restart-removals`, which it leaves.
# Needs kubectl and python3.
set -euo pipefail
bin=$1
n=${2:-1000}
ns=restart-removals
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/restart-removals.XXXXXX)
kubectl apply -f "$repo/crds" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/approvalrequests.gatehouse.dev >/dev/null
kubectl get ns "$ns" >/dev/null 2>&1 || kubectl create ns "$ns" >/dev/null
# The owner the bindings' owner reference names (the garbage collector would
# delete bindings whose owner does not exist).
kubectl apply -f - >/dev/null <<YAML
apiVersion: gatehouse.dev/v1alpha1
kind: ApprovalRequest
metadata: {name: owner, namespace: $ns}
spec: {requester: {username: alice, groups: [developers]}, role: {kind: ClusterRole, name: view}, reason: restart-removals}
YAML
uid=$(kubectl -n "$ns" get approvalrequests.gatehouse.dev owner -o jsonpath='{.metadata.uid}')
python3 - "$ns" "$uid" "$n" >"$out/bindings.json" <<'PY'
import json, sys
ns, uid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
labels = {"app.kubernetes.io/managed-by": "gatehouse", "gatehouse.dev/request-namespace": ns,
          "gatehouse.dev/request-name": "owner", "gatehouse.dev/request-uid": uid}
owner = {"apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest", "name": "owner",
         "uid": uid, "controller": True, "blockOwnerDeletion": False}
items = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": {"name": f"expired-{i:05d}", "namespace": ns, "labels": labels,
                       "annotations": {"gatehouse.dev/expires-at": "2026-01-01T00:00:00Z"},
                       "ownerReferences": [owner]},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "nobody"}]}
         for i in range(n)]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
kubectl create -f "$out/bindings.json" >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
started=$(date +%s.%N)
NO_COLOR=1 env -u RUST_LOG "$bin" run --leader-election=false --http-addr 127.0.0.1:0 >"$out/operator.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  left=$(kubectl -n "$ns" get rolebindings -o name | grep -c expired- || true)
  [[ $left == 0 ]] && break
  sleep 0.1
done
gone=$(date +%s.%N)
sleep 1
python3 - "$out/operator.log" "$started" "$gone" "$n" <<'PY'
import datetime, re, sys
log, started, gone, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def at(line):
    stamp = line.split()[0].rstrip("Z")
    base, _, frac = stamp.partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float("0." + (frac or "0"))
first = listed = None
for line in open(log):
    if first is None and re.search(r"removed by the removal lane|binding removed|sweep removed", line):
        first = at(line)
    if listed is None and "listed" in line and 'kind="rolebindings"' in line:
        listed = at(line)
show = lambda t: f"{t - started:.3f} s" if t else "not logged"
print(f"N={n}: process start -> first removal {show(first)}; -> RoleBindings listed {show(listed)}; "
      f"-> all {n} gone {gone - started:.3f} s (operator log: {log})")
PY
