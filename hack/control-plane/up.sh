#!/usr/bin/env bash
# Starts a real, empty Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager) on 127.0.0.1 with state in DIR, for the Gatehouse
# e2e tests. No kubelet, no scheduler, no Docker: objects are stored and
# admitted for real, but pods never run.
#
# Usage: up.sh DIR        (stop with: down.sh DIR)
#
# Creates in DIR:
#   kubeconfig   admin kubeconfig (token auth); contexts admin (current), alice, bob, carol
#   tokens.csv   the --token-auth-file (admin in system:masters, alice/developers, bob/sre, carol/security)
#   pki/         CA, apiserver serving cert, service-account signing keys
#   etcd/        etcd data
#   pids         "name pid" per started process, read by down.sh
#   env          shell snippet with ports, paths and versions (restart-apiserver.sh reads it)
#   *.log        one log per process
#
# Environment:
#   GATEHOUSE_UP_TIMEOUT          seconds to wait for /readyz (default 60)
#   GATEHOUSE_NO_CONTROLLER_MANAGER=1  do not start kube-controller-manager
#   GATEHOUSE_APISERVER_EXTRA_ARGS     extra kube-apiserver flags (word-split), e.g. --feature-gates=...
#   GATEHOUSE_AUDIT_WEBHOOK=auto|HOST:PORT  send audit events (config/audit/policy.yaml, level
#                                 Metadata) to a Gatehouse audit webhook receiver at
#                                 https://HOST:PORT/audit (auto: a free port on 127.0.0.1);
#                                 writes pki/audit-server.*, audit-token, audit-webhook.kubeconfig
#                                 and prints GATEHOUSE_E2E_AUDIT_* exports for `gatehouse run`
#   GATEHOUSE_ETCD_BIN            run this etcd binary instead of the one build.sh built
#                                 (experiments only, e.g. an old etcd; up.sh warns when its
#                                 version is not the one k8s.io/kubernetes pins)
#   plus everything build.sh reads (GATEHOUSE_CACHE, GATEHOUSE_FORCE_BUILD)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
log() { printf '[up] %s\n' "$*" >&2; }
die() { printf '[up] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 DIR"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
timeout=${GATEHOUSE_UP_TIMEOUT:-60}

for tool in openssl curl setsid; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# Refuse to start a second control plane over a live one: it would wipe the
# etcd data under the running etcd and orphan its processes.
if [[ -s "$dir/pids" ]]; then
  while read -r name pid; do
    # Same PID-reuse guard as down.sh: only a process whose flags name DIR counts.
    if cp_ours "$dir" "$pid"; then
      die "$name (pid $pid) from a previous up.sh is still running; run $here/down.sh $dir first"
    fi
  done <"$dir/pids"
fi

bin=$("$here/build.sh" | tail -n1)
for b in etcd kube-apiserver kube-controller-manager; do
  [[ -x "$bin/$b" ]] || die "build.sh did not produce $bin/$b"
done
etcd_bin=${GATEHOUSE_ETCD_BIN:-$bin/etcd}
[[ -x "$etcd_bin" ]] || die "GATEHOUSE_ETCD_BIN=$etcd_bin is not executable"
etcd_version=$(cp_etcd_version "$etcd_bin")
pinned_etcd=$(cp_etcd_version "$bin/etcd")
apiserver_version=$(cp_apiserver_version "$bin/kube-apiserver")
log "etcd ${etcd_version:-unknown} ($etcd_bin), kube-apiserver ${apiserver_version:-unknown}"
if [[ "$etcd_version" != "$pinned_etcd" ]]; then
  log "WARNING: etcd ${etcd_version:-unknown} is not the etcd $pinned_etcd that Kubernetes $apiserver_version pins; use it for experiments only"
fi

# Every run is a fresh, empty cluster: tests must not depend on leftovers,
# and certificates/tokens are cheap to regenerate.
rm -rf "$dir/pki" "$dir/etcd" "$dir/kcm-certs"
rm -f "$dir"/*.log "$dir/pids" "$dir/kubeconfig" "$dir/tokens.csv" "$dir/env" "$dir/kcm.kubeconfig"
mkdir -p "$dir/pki" "$dir/etcd" "$dir/kcm-certs"
chmod 700 "$dir/pki" "$dir/etcd"
: >"$dir/pids"

# ---------------------------------------------------------------- ports
# Ports are drawn below the Linux ephemeral range (32768+) so they cannot
# collide with the source port of some outgoing connection. A port is taken
# if something accepts a connection on it. There is a small window between
# probing and binding; if another process grabs the port then, the component
# fails to start and the readiness wait reports it with its log.
# pick_port runs in a $(...) subshell, so the caller records each pick.
used_ports=()
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$(shuf -i 20000-32000 -n 1)
    [[ " ${used_ports[*]} " == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "could not find a free port on 127.0.0.1"
}
etcd_client_port=$(pick_port); used_ports+=("$etcd_client_port")
etcd_peer_port=$(pick_port); used_ports+=("$etcd_peer_port")
apiserver_port=$(pick_port); used_ports+=("$apiserver_port")
kcm_port=$(pick_port); used_ports+=("$kcm_port")
audit_addr=
case "${GATEHOUSE_AUDIT_WEBHOOK:-}" in
  "") ;;
  auto) audit_port=$(pick_port); used_ports+=("$audit_port"); audit_addr=127.0.0.1:$audit_port ;;
  *) audit_addr=$GATEHOUSE_AUDIT_WEBHOOK ;;
esac

# ---------------------------------------------------------------- pki
log "generating certificates and tokens in $dir/pki"
pki=$dir/pki
ossl() { openssl "$@" 2>>"$dir/openssl.log" >/dev/null; }
# EC P-256: generating RSA keys is the slowest part of startup otherwise.
ossl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 30 -subj "/CN=gatehouse-e2e-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver"
# The kubernetes.default* names and 10.0.0.1 (first IP of the service range)
# are what in-cluster clients would use; they are names in a certificate, not
# addresses anything binds to.
cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1
EOF
ossl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -out "$pki/apiserver.crt" -days 30 -extfile "$pki/apiserver.ext"
# RSA for the service-account keys: RS256 is what every token consumer supports.
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key

tok() { openssl rand -hex 16; }
admin_token=$(tok)
kcm_token=$(tok)
alice_token=$(tok)
bob_token=$(tok)
carol_token=$(tok)
# Format: token,user,uid,"group1,group2". KCM authenticates as the user the
# RBAC bootstrap policy already grants (system:kube-controller-manager).
cat >"$dir/tokens.csv" <<EOF
$admin_token,admin,uid-admin,"system:masters"
$kcm_token,system:kube-controller-manager,uid-kcm,
$alice_token,alice,uid-alice,"developers"
$bob_token,bob,uid-bob,"sre"
$carol_token,carol,uid-carol,"security"
EOF
chmod 600 "$dir/tokens.csv"

server=https://127.0.0.1:$apiserver_port
ca_data=$(base64 -w0 <"$pki/ca.crt")
{
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gatehouse-e2e
  cluster:
    server: $server
    certificate-authority-data: $ca_data
current-context: admin
contexts:
EOF
  for u in admin alice bob carol; do
    printf -- '- name: %s\n  context:\n    cluster: gatehouse-e2e\n    user: %s\n' "$u" "$u"
  done
  echo "users:"
  printf -- '- name: admin\n  user:\n    token: %s\n' "$admin_token"
  printf -- '- name: alice\n  user:\n    token: %s\n' "$alice_token"
  printf -- '- name: bob\n  user:\n    token: %s\n' "$bob_token"
  printf -- '- name: carol\n  user:\n    token: %s\n' "$carol_token"
} >"$dir/kubeconfig"
cat >"$dir/kcm.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gatehouse-e2e
  cluster:
    server: $server
    certificate-authority-data: $ca_data
current-context: kcm
contexts:
- name: kcm
  context:
    cluster: gatehouse-e2e
    user: kcm
users:
- name: kcm
  user:
    token: $kcm_token
EOF
chmod 600 "$dir/kubeconfig" "$dir/kcm.kubeconfig"

# ---------------------------------------------------------------- audit webhook
# The API server posts its audit events (batch mode) to Gatehouse's receiver,
# which accepts only the client certificate from this CA or the token below.
if [[ -n "$audit_addr" ]]; then
  log "audit events go to https://$audit_addr/audit"
  ossl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/audit-server.key" -out "$pki/audit-server.csr" -subj "/CN=gatehouse-audit"
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s\n' "${audit_addr%:*}" >"$pki/audit-server.ext"
  ossl x509 -req -in "$pki/audit-server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/audit-server.crt" -days 30 -extfile "$pki/audit-server.ext"
  ossl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/audit-client.key" -out "$pki/audit-client.csr" -subj "/CN=kube-apiserver-audit"
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$pki/audit-client.ext"
  ossl x509 -req -in "$pki/audit-client.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/audit-client.crt" -days 30 -extfile "$pki/audit-client.ext"
  chmod 600 "$pki"/*.key
  tok >"$dir/audit-token"
  chmod 600 "$dir/audit-token"
  cp "$here/../../config/audit/policy.yaml" "$dir/audit-policy.yaml"
  cat >"$dir/audit-webhook.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gatehouse-audit
  cluster:
    server: https://$audit_addr/audit
    certificate-authority: $pki/ca.crt
current-context: gatehouse-audit
contexts:
- name: gatehouse-audit
  context:
    cluster: gatehouse-audit
    user: kube-apiserver
users:
- name: kube-apiserver
  user:
    client-certificate: $pki/audit-client.crt
    client-key: $pki/audit-client.key
EOF
  chmod 600 "$dir/audit-webhook.kubeconfig"
  GATEHOUSE_APISERVER_EXTRA_ARGS="${GATEHOUSE_APISERVER_EXTRA_ARGS:-} --audit-policy-file=$dir/audit-policy.yaml --audit-webhook-config-file=$dir/audit-webhook.kubeconfig --audit-webhook-mode=batch --audit-webhook-batch-max-wait=1s --audit-webhook-initial-backoff=1s"
fi

# ---------------------------------------------------------------- processes
# If anything below fails, stop what was already started instead of leaving
# orphans listening on loopback.
started_ok=0
cleanup_on_failure() {
  if [[ $started_ok != 1 ]]; then
    log "startup failed; stopping what was started"
    "$here/down.sh" "$dir" >&2 || true
  fi
}
trap cleanup_on_failure EXIT

tail_logs() {
  local f
  for f in "$dir"/etcd.log "$dir"/kube-apiserver.log "$dir"/kube-controller-manager.log; do
    [[ -f "$f" ]] || continue
    printf '\n----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
}

# Wait for URL to answer (see cp_wait_http); on failure show the logs and stop.
wait_http() {
  local what=$1 url=$2 pid=$3 limit=$4 rc=0
  shift 4
  cp_wait_http "$url" "$pid" "$limit" "$@" || rc=$?
  case $rc in
    0) return 0 ;;
    1) tail_logs; die "$what exited before becoming ready (see $dir/*.log)" ;;
    *) tail_logs; die "$what did not become ready at $url within ${limit}s (see $dir/*.log)" ;;
  esac
}

start() {
  local name=$1 pid
  shift
  pid=$(cp_start "$dir" "$name" new "$@")
  log "started $name (pid $pid)"
}

etcd_url=http://127.0.0.1:$etcd_client_port
etcd_peer=http://127.0.0.1:$etcd_peer_port

# Everything restart-apiserver.sh needs to start the API server again with the
# same flags, written before anything starts so that it is there even for a
# control plane whose startup is being debugged. %q keeps the extra args intact.
{
  printf 'GATEHOUSE_E2E_KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'GATEHOUSE_E2E_SERVER=%q\n' "$server"
  printf 'GATEHOUSE_E2E_APISERVER_PORT=%q\n' "$apiserver_port"
  printf 'GATEHOUSE_E2E_APISERVER_EXTRA_ARGS=%q\n' "${GATEHOUSE_APISERVER_EXTRA_ARGS:-}"
  printf 'GATEHOUSE_E2E_APISERVER_VERSION=%q\n' "$apiserver_version"
  printf 'GATEHOUSE_E2E_ETCD=%q\n' "$etcd_url"
  printf 'GATEHOUSE_E2E_ETCD_BIN=%q\n' "$etcd_bin"
  printf 'GATEHOUSE_E2E_ETCD_VERSION=%q\n' "$etcd_version"
  printf 'GATEHOUSE_E2E_KCM_PORT=%q\n' "$kcm_port"
  printf 'GATEHOUSE_E2E_BIN=%q\n' "$bin"
} >"$dir/env"
# shellcheck source=/dev/null
source "$dir/env"

etcd_args=(
  --name=gatehouse-e2e
  --data-dir="$dir/etcd"
  --listen-client-urls="$etcd_url"
  --advertise-client-urls="$etcd_url"
  --listen-peer-urls="$etcd_peer"
  --initial-advertise-peer-urls="$etcd_peer"
  --initial-cluster="gatehouse-e2e=$etcd_peer"
  --initial-cluster-state=new
)
# A throwaway test cluster does not need durability; skipping fsync makes
# every write several times faster. Only added when this etcd knows the flag.
if "$etcd_bin" --help 2>&1 | grep -q -- '--unsafe-no-fsync'; then
  etcd_args+=(--unsafe-no-fsync)
fi
start etcd "$etcd_bin" "${etcd_args[@]}"
wait_http etcd "$etcd_url/health" "$(cp_pid_of "$dir" etcd)" "$timeout"

# The flags are in lib.sh (cp_apiserver_args), shared with restart-apiserver.sh.
apiserver_pid=$(cp_start_apiserver "$dir" new)
log "started kube-apiserver (pid $apiserver_pid)"
wait_http kube-apiserver "$server/readyz" "$apiserver_pid" "$timeout" \
  --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token"

if [[ "${GATEHOUSE_NO_CONTROLLER_MANAGER:-0}" != 1 ]]; then
  # shellcheck disable=SC2054 # the commas are inside flag values, not separators
  kcm_args=(
    --kubeconfig="$dir/kcm.kubeconfig"
    --authentication-kubeconfig="$dir/kcm.kubeconfig"
    --authorization-kubeconfig="$dir/kcm.kubeconfig"
    # The apiserver has no front-proxy/requestheader CA; without this KCM
    # logs "missing content for CA bundle" errors about it every few ms.
    --authentication-skip-lookup
    --bind-address=127.0.0.1
    --secure-port="$kcm_port"
    --cert-dir="$dir/kcm-certs"
    --leader-elect=false
    # Only controllers that make sense without nodes: cascading deletes,
    # namespace deletion, aggregated ClusterRoles (admin/edit/view), default
    # ServiceAccounts in new namespaces, legacy SA token secrets, and Jobs (their
    # pods stay Pending: no scheduler, no kubelet; the e2e suite stands in for
    # the kubelet by binding a pod and writing its final status).
    --controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller,serviceaccount-controller,serviceaccount-token-controller,job-controller
    # Like kubeadm: each controller acts with its own RBAC-scoped service
    # account instead of KCM's identity.
    --use-service-account-credentials=true
    --service-account-private-key-file="$pki/sa.key"
    --root-ca-file="$pki/ca.crt"
    --profiling=false
  )
  start kube-controller-manager "$bin/kube-controller-manager" "${kcm_args[@]}"
  # /healthz is in KCM's always-allowed paths, so no credentials are needed.
  wait_http kube-controller-manager "https://127.0.0.1:$kcm_port/healthz" \
    "$(cp_pid_of "$dir" kube-controller-manager)" "$timeout" --insecure
fi

started_ok=1
log "control plane is ready at $server: etcd $etcd_version, kube-apiserver $apiserver_version (state in $dir, stop with $here/down.sh $dir)"
echo "export GATEHOUSE_E2E_KUBECONFIG=$dir/kubeconfig"
if [[ -n "$audit_addr" ]]; then
  echo "export GATEHOUSE_E2E_AUDIT_ADDR=$audit_addr"
  echo "export GATEHOUSE_E2E_AUDIT_CERT=$pki/audit-server.crt"
  echo "export GATEHOUSE_E2E_AUDIT_KEY=$pki/audit-server.key"
  echo "export GATEHOUSE_E2E_AUDIT_CLIENT_CA=$pki/ca.crt"
  echo "export GATEHOUSE_E2E_AUDIT_TOKEN_FILE=$dir/audit-token"
fi
