# shellcheck shell=bash
# Functions shared by the hack/control-plane scripts; sourced, never run.
#
# The kube-apiserver command line lives here and nowhere else: up.sh starts the
# API server with cp_apiserver_args and restart-apiserver.sh starts it again
# with the same function and the same DIR/env, so a restart runs exactly the
# flags (ports, certificates, etcd, extra args) of the first start.
#
# Callers define log() and set `dir` (absolute state directory) before use.

# True if PID is alive and its command line names the state directory DIR.
# Every process these scripts start has DIR in its flags; a recycled PID of
# some unrelated process does not. A zombie has an empty cmdline and counts
# as gone, which it is for our purposes.
cp_ours() {
  local dir=$1 pid=$2 cmdline
  [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$dir/"* ]]
}

# PID recorded for NAME in DIR/pids (empty if none).
cp_pid_of() { awk -v n="$2" '$1 == n {print $2}' "$1/pids" 2>/dev/null; }

# Records NAME's PID in DIR/pids: replaces NAME's line where it was (down.sh
# stops processes in reverse order of this file, so the order must survive a
# restart) or appends it for a new NAME.
cp_set_pid() {
  local dir=$1 name=$2 pid=$3 tmp
  tmp=$(mktemp "$dir/.pids.XXXXXX")
  awk -v n="$name" -v p="$pid" '
    $1 == n { print n, p; done = 1; next }
    { print }
    END { if (!done) print n, p }' "$dir/pids" >"$tmp" 2>/dev/null || true
  mv -f "$tmp" "$dir/pids"
}

# cp_start DIR NAME LOGMODE CMD... starts CMD in its own session (setsid: it
# outlives the calling script and a Ctrl-C in the caller's terminal does not
# reach it), logs to DIR/NAME.log (LOGMODE "new" truncates, "append" keeps the
# previous run's log), records the PID and prints it.
cp_start() {
  local dir=$1 name=$2 mode=$3
  shift 3
  if [[ $mode == append ]]; then
    printf '\n===== %s restarted at %s =====\n' "$name" "$(date -u +%FT%T.%3NZ)" >>"$dir/$name.log"
    setsid "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  else
    setsid "$@" </dev/null >"$dir/$name.log" 2>&1 &
  fi
  local pid=$!
  cp_set_pid "$dir" "$name" "$pid"
  echo "$pid"
}

# cp_wait_http URL PID LIMIT [curl args...]: polls URL until it answers 2xx.
# Returns 0 when ready, 1 if PID died first, 2 after LIMIT seconds.
cp_wait_http() {
  local url=$1 pid=$2 limit=$3 i
  shift 3
  for ((i = 0; i < limit * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 2
}

# Token of the `admin` user (system:masters) from DIR/tokens.csv.
cp_admin_token() { awk -F, '$2 == "admin" {print $1}' "$1/tokens.csv"; }

# Waits for the API server's /readyz as admin (see cp_wait_http for the result).
cp_wait_apiserver_ready() {
  local dir=$1 pid=$2 limit=$3
  cp_wait_http "$GATEHOUSE_E2E_SERVER/readyz" "$pid" "$limit" \
    --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $(cp_admin_token "$dir")"
}

# Fills the array CP_APISERVER_ARGS with kube-apiserver's flags for DIR.
# Reads the values up.sh recorded in DIR/env (source it first).
cp_apiserver_args() {
  local dir=$1 pki=$1/pki
  # shellcheck disable=SC2054 # the commas are inside flag values, not separators
  CP_APISERVER_ARGS=(
    --bind-address=127.0.0.1
    --advertise-address=127.0.0.1
    --secure-port="$GATEHOUSE_E2E_APISERVER_PORT"
    --etcd-servers="$GATEHOUSE_E2E_ETCD"
    --tls-cert-file="$pki/apiserver.crt"
    --tls-private-key-file="$pki/apiserver.key"
    --client-ca-file="$pki/ca.crt"
    --token-auth-file="$dir/tokens.csv"
    --authorization-mode=Node,RBAC
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$pki/sa.pub"
    --service-account-signing-key-file="$pki/sa.key"
    --service-cluster-ip-range=10.0.0.0/24
    # No kubelets/endpoints exist; without this the apiserver keeps rewriting
    # the kubernetes Service endpoints to 127.0.0.1, which is useless noise.
    --endpoint-reconciler-type=none
    # Keeps the apiserver from writing self-signed certs to /var/run/kubernetes.
    --cert-dir="$pki"
    --profiling=false
  )
  # ValidatingAdmissionPolicy (GA since 1.30) and MutatingAdmissionPolicy
  # (GA since 1.36, admissionregistration.k8s.io/v1) are on by default in the
  # pinned version, so no --runtime-config/--feature-gates are needed here.
  # The extra args are the ones given to up.sh, recorded in DIR/env, so a
  # restart does not pick up a different GATEHOUSE_APISERVER_EXTRA_ARGS.
  # shellcheck disable=SC2206 # word-splitting the extra args is the point
  CP_APISERVER_ARGS+=(${GATEHOUSE_E2E_APISERVER_EXTRA_ARGS:-})
}

# Starts kube-apiserver for DIR (LOGMODE: new | append) and prints its PID.
cp_start_apiserver() {
  local dir=$1 mode=$2
  cp_apiserver_args "$dir"
  cp_start "$dir" kube-apiserver "$mode" "$GATEHOUSE_E2E_BIN/kube-apiserver" "${CP_APISERVER_ARGS[@]}"
}

# "etcd Version: 3.7.0" -> 3.7.0; "Kubernetes v1.37.2" -> v1.37.2.
cp_etcd_version() { "$1" --version 2>/dev/null | awk '/^etcd Version:/ {print $3}'; }
cp_apiserver_version() { "$1" --version 2>/dev/null | awk '{print $2}'; }
