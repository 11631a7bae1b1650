#!/usr/bin/env bash
# Builds the kubectl plugin for release and packs it for krew.
#
# Usage: hack/plugin-release.sh VERSION
#   VERSION               v + the version in Cargo.toml, e.g. v0.1.0
# Environment:
#   GATEHOUSE_PLUGIN_URL  where the archives will be downloaded from
#                         (default: the uris of plugins/gatehouse.yaml)
#   PROFILE               cargo profile (default release; `dev` checks the packing quickly)
#   CARGO_TARGET_DIR      as for cargo (default target/)
#
# Writes, for the platform it runs on:
#   dist/kubectl-gatehouse-VERSION-OS-ARCH.tar.gz  kubectl-gatehouse and kubectl_complete-gatehouse
#   dist/gatehouse.yaml                             plugins/gatehouse.yaml with this archive's
#                                                   uri and sha256
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'plugin-release: %s\n' "$*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 VERSION (e.g. v0.1.0)"
version=$1
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ $version == "v$crate_version" ]] || die "VERSION $version does not match Cargo.toml's $crate_version"
manifest=plugins/gatehouse.yaml
grep -q "^  version: $version\$" "$manifest" || die "$manifest is not for $version"

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported OS $(uname -s)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

profile=${PROFILE:-release}
cargo build --locked --profile "$profile" --bin kubectl-gatehouse --bin kubectl_complete-gatehouse
target=${CARGO_TARGET_DIR:-target}
[[ $profile == dev ]] && out="$target/debug" || out="$target/$profile"

archive="kubectl-gatehouse-$version-$os-$arch.tar.gz"
mkdir -p dist
tar -czf "dist/$archive" -C "$out" kubectl-gatehouse kubectl_complete-gatehouse
sha=$(sha256sum "dist/$archive" | cut -d' ' -f1)

# This platform's entry gets the archive's uri and sha256.
awk -v os="$os" -v arch="$arch" -v sha="$sha" -v base="${GATEHOUSE_PLUGIN_URL:-}" -v archive="$archive" '
  /matchLabels:/ { mine = ($0 ~ "os: " os "," && $0 ~ "arch: " arch "}") }
  mine && /^    uri: / && base != "" { sub(/uri: .*/, "uri: " base "/" archive) }
  mine && /^    sha256: / { sub(/sha256: .*/, "sha256: \"" sha "\"") }
  { print }
' "$manifest" >dist/gatehouse.yaml
grep -q "$sha" dist/gatehouse.yaml || die "no $os/$arch entry in $manifest"
printf 'dist/%s\nsha256 %s\ndist/gatehouse.yaml\n' "$archive" "$sha"
