#!/usr/bin/env bash
# Compacts the etcd of the control plane that up.sh started in DIR up to its
# current revision, so that every older resourceVersion is gone from etcd.
# Uses etcd's JSON gateway (/v3/kv/range, /v3/kv/compaction) with curl, so no
# etcdctl is needed.
#
# Usage: compact-etcd.sh DIR          prints the compacted revision on stdout
#
# A watch resumed from an older resourceVersion then gets 410 Gone only if the
# API server serves it from etcd, i.e. for a resource whose watch cache is off
# (up.sh with GATEHOUSE_APISERVER_EXTRA_ARGS="--watch-cache-sizes=RESOURCE#0"
# or "--watch-cache=false"). Through the watch cache (the default) compaction
# changes nothing for watchers; restart-apiserver.sh is the way to expire them
# there (see README.md, "Fault injection").
set -euo pipefail

log() { printf '[compact-etcd] %s\n' "$*" >&2; }
die() { printf '[compact-etcd] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 DIR"
[[ -s "$1/env" ]] || die "$1/env is missing: start the control plane with up.sh first"
# shellcheck source=/dev/null
source "$1/env"

# The empty key with no range end reads nothing; the response header carries
# the store's current revision.
rev=$(curl -fsS --max-time 5 -X POST "$GATEHOUSE_E2E_ETCD/v3/kv/range" -d '{"key":"AA=="}' |
  sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
[[ -n "$rev" ]] || die "could not read the current revision from $GATEHOUSE_E2E_ETCD"
# physical: return only once the compaction is applied to the backend.
out=$(curl -sS --max-time 30 -w '\n%{http_code}' -X POST "$GATEHOUSE_E2E_ETCD/v3/kv/compaction" \
  -d "{\"revision\":\"$rev\",\"physical\":true}")
case $out in
  *$'\n'200) log "compacted etcd at $GATEHOUSE_E2E_ETCD up to revision $rev" ;;
  # Nothing was written since the last compaction: already compacted to here.
  *"required revision has been compacted"*) log "etcd was already compacted up to revision $rev" ;;
  *) die "compaction failed: $out" ;;
esac
echo "$rev"
