#!/usr/bin/env bash
# Installs the chart-checking tools, each only when missing, into a cache that
# survives between runs (a second run takes well under a second):
#   helm           v3, built from its Go module (no release download needed)
#   helm-unittest  built from its Go module and wired as the `helm unittest` plugin
#   kubernetes-validate  (PyPI) offline Kubernetes JSON schemas
#
#   infra/deploy-tools.sh install   install what is missing (default)
#   infra/deploy-tools.sh env       install, then print `export` lines:
#                                   eval "$(infra/deploy-tools.sh env)"
#
# TINYTRAIL_TOOLS_DIR (default $HOME/.cache/tinytrail) holds bin/ and helm-plugins/.
# The first build compiles helm and helm-unittest with Go (a few minutes, once;
# Go's module and build caches make later rebuilds fast).
set -euo pipefail

HELM_VERSION=v3.22.0
# helm's default "cluster" version for `helm template` comes from its client-go
# minor at build time (release builds set it with -ldflags; `go install` does not,
# leaving v1.20, which this chart's kubeVersion refuses). v3.22.0 uses client-go
# v0.37 => Kubernetes 1.37.
HELM_K8S_MINOR=37
# @latest of helm-unittest cannot be `go install`ed (its go.mod has a replace
# directive), so it is built inside its module; pinned for reproducibility.
HELM_UNITTEST_VERSION=v1.1.2

TOOLS=${TINYTRAIL_TOOLS_DIR:-$HOME/.cache/tinytrail}
BIN=$TOOLS/bin
PLUGINS=$TOOLS/helm-plugins
PYTHON=${PYTHON:-python3}

log() { printf '[deploy-tools] %s\n' "$*" >&2; }
die() { printf '[deploy-tools] ERROR: %s\n' "$*" >&2; exit 1; }

need_go() {
  command -v go >/dev/null 2>&1 || die "Go is needed to build helm and helm-unittest (https://go.dev/doc/install)"
}

install_helm() {
  if [ -x "$BIN/helm" ] && [ "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
    return
  fi
  need_go
  log "building helm $HELM_VERSION (once)"
  local pkg=helm.sh/helm/v3
  local ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION"
  ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
  ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
  GOBIN=$BIN go install -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$HELM_VERSION"
}

install_helm_unittest() {
  local stamp=$BIN/.helm-unittest.version
  if [ ! -x "$BIN/helm-unittest" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$HELM_UNITTEST_VERSION" ]; then
    need_go
    log "building helm-unittest $HELM_UNITTEST_VERSION (once)"
    local mod=github.com/helm-unittest/helm-unittest
    local src work
    src=$(cd "$TOOLS" && GOFLAGS=-mod=mod go mod download -json "$mod@$HELM_UNITTEST_VERSION" |
      "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    # The module cache is read-only; build in a scratch copy so its replace applies.
    work=$(mktemp -d)
    cp -R "$src/." "$work/"
    chmod -R u+w "$work"
    (cd "$work" && go build -trimpath \
      -ldflags "-s -w -X $mod/internal/build.version=$HELM_UNITTEST_VERSION" \
      -o "$BIN/helm-unittest" ./cmd/helm-unittest)
    rm -rf "$work"
    echo "$HELM_UNITTEST_VERSION" >"$stamp"
  fi
  # A local plugin directory instead of `helm plugin install` (which downloads a
  # prebuilt binary): plugin.yaml just points at the binary built above.
  mkdir -p "$PLUGINS/unittest"
  cat >"$PLUGINS/unittest/plugin.yaml" <<YAML
name: unittest
version: "${HELM_UNITTEST_VERSION#v}"
usage: unittest for helm charts
description: helm-unittest built from source by infra/deploy-tools.sh
command: "$BIN/helm-unittest"
YAML
}

install_kubernetes_validate() {
  if ! "$PYTHON" -c 'import kubernetes_validate' >/dev/null 2>&1; then
    log "installing kubernetes-validate"
    "$PYTHON" -m pip install --quiet 'kubernetes-validate>=1.33'
  fi
}

install_all() {
  mkdir -p "$BIN" "$PLUGINS"
  install_helm
  install_helm_unittest
  install_kubernetes_validate
}

case "${1:-install}" in
  install) install_all ;;
  env)
    install_all
    printf 'export PATH=%q:"$PATH"\n' "$BIN"
    printf 'export HELM_PLUGINS=%q\n' "$PLUGINS"
    ;;
  -h | --help | help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command: $1 (install | env)" ;;
esac
