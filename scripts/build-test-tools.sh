#!/usr/bin/env bash
# Builds the real Kubernetes peers that eventpipe's conformance, exporter and
# aggregation tests run against (docs/architecture.md, "The real peers in
# tests"):
#
#   .tools/bin/kube-apiserver   k8s.io/kubernetes/cmd/kube-apiserver
#   .tools/bin/kubectl          tools/kube/cmd/kubectl (k8s.io/kubectl)
#   .tools/bin/helm             helm.sh/helm/v4/cmd/helm (tools/deploy)
#   .tools/crds/                the CustomResourceDefinitions the chart's
#                               optional objects need (cert-manager's and
#                               prometheus-operator's), from their modules
#
# kube-apiserver and kubectl come from the separate module tools/kube, whose
# go.mod pins k8s.io/kubernetes and replaces each of its staging modules with
# the matching v0.x release; helm from tools/deploy. etcd is Debian's
# etcd-server (scripts/install-deps.sh), not built here.
#
# Idempotent: a binary is rebuilt only when it is missing or when its inputs
# changed (its module's go.mod, go.sum, .go files, this script, the Go
# version); a stamp file next to it records the hash of those inputs.
#
# Usage: scripts/build-test-tools.sh [--force]
set -euo pipefail

log() { echo "build-test-tools: $*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: scripts/build-test-tools.sh [--force])" ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/tools/kube"
bin="$root/.tools/bin"

command -v go >/dev/null 2>&1 || die "go is not on PATH"
[[ -f "$mod/go.mod" && -f "$mod/go.sum" ]] || die "$mod/go.mod or go.sum missing"

# The tools module is built on its own: no workspace, and never rewrite
# go.mod/go.sum behind the developer's back (-mod=readonly): if they are not
# tidy the build fails and says so. Static binaries, as upstream releases.
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0

# Hash of everything that decides what a module's binaries contain.
inputs_hash() {
  local m=$1
  {
    go version
    cat "$0" "$m/go.mod" "$m/go.sum"
    (cd "$m" && find . -name '*.go' -type f | LC_ALL=C sort | xargs -r cat)
  } | sha256sum | cut -d' ' -f1
}

# The deployment peers: helm, and the CRDs of the operators whose objects
# the chart can render (ServiceMonitor, PrometheusRule, Certificate,
# Issuer), taken as published in those projects' Go modules at the versions
# below, so that the server-side dry run checks them against the real
# schemas. Their module downloads are verified against the checksum
# database like every other module.
certmanager_module=github.com/cert-manager/cert-manager@v1.21.2
promoperator_module=github.com/prometheus-operator/prometheus-operator@v0.85.0
build_deploy_tools() {
  local dmod="$root/tools/deploy" dhash stamp="$bin/.helm.stamp"
  dhash=$( { inputs_hash "$dmod"; echo "$certmanager_module $promoperator_module"; } | sha256sum | cut -d' ' -f1)
  if ((force == 0)) && [[ -x "$bin/helm" && -f "$stamp" && "$(cat "$stamp")" == "$dhash" ]]; then
    log "helm and the CRDs are up to date ($bin/helm, $root/.tools/crds)"
    return
  fi
  mkdir -p "$bin"
  rm -f "$stamp"
  log "building helm (helm.sh/helm/v4, tools/deploy) into $bin/helm ..."
  local start=$SECONDS hver
  hver=$(cd "$dmod" && go list -m -f '{{.Version}}' helm.sh/helm/v4) || die "cannot resolve helm.sh/helm/v4 in $dmod/go.mod"
  # helm reports the version it was stamped with (internal/version).
  (cd "$dmod" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$hver" \
    -o "$bin/helm.tmp" helm.sh/helm/v4/cmd/helm) || { rm -f "$bin/helm.tmp"; die "building helm failed (module: $dmod)"; }
  mv -f "$bin/helm.tmp" "$bin/helm"
  local crds="$root/.tools/crds" tmp dir
  rm -rf "$crds" && mkdir -p "$crds/cert-manager" "$crds/prometheus-operator"
  tmp=$(mktemp -d)
  for m in "$certmanager_module" "$promoperator_module"; do
    dir=$(cd "$tmp" && go mod download -json "$m" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d "$dir" ]] || { rm -rf "$tmp"; die "could not download $m from the module proxy"; }
    case "$m" in
      github.com/cert-manager/*) cp "$dir"/deploy/crds/*.yaml "$crds/cert-manager/" ;;
      *) cp "$dir"/example/prometheus-operator-crd/*.yaml "$crds/prometheus-operator/" ;;
    esac
  done
  rm -rf "$tmp"
  chmod -R u+w "$crds"
  echo "$dhash" >"$stamp"
  log "built helm $hver and copied the CRDs in $((SECONDS - start))s"
}
build_deploy_tools

hash=$(inputs_hash "$mod")

# name -> package (built with the working directory in tools/kube)
names=(kube-apiserver kubectl)
declare -A pkgs=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=./cmd/kubectl
)

todo=()
for name in "${names[@]}"; do
  stamp="$bin/.$name.stamp"
  if ((force == 0)) && [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    log "$name is up to date ($bin/$name)"
  else
    todo+=("$name")
  fi
done
((${#todo[@]} == 0)) && exit 0

cd "$mod"

# Every k8s.io staging module that k8s.io/kubernetes requires at v0.0.0 must
# be replaced here, or the build fails with confusing "v0.0.0: unknown
# revision" errors; check before building so a version bump says what to fix.
kver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes) || die "cannot resolve k8s.io/kubernetes in $mod/go.mod"
kmod=$(go mod download -json "k8s.io/kubernetes@$kver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -f "$kmod" ]] || die "could not download k8s.io/kubernetes@$kver's go.mod from the module proxy"
replaced=$(go mod edit -json | awk '
  /^\t"Replace": \[/ {r = 1; next}
  r && /^\t\]/ {r = 0}
  r && /"Old":/ {o = 1; next}
  r && o && /"Path":/ {gsub(/[",]/, "", $2); print $2; o = 0}')
missing=()
while read -r m; do
  grep -qxF "$m" <<<"$replaced" || missing+=("$m")
done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$kmod")
if ((${#missing[@]} > 0)); then
  die "tools/kube/go.mod lacks a replace for these staging modules of k8s.io/kubernetes@$kver: ${missing[*]} (add 'MODULE => MODULE v0.${kver#v1.}' for each, then run 'go mod tidy' in tools/kube)"
fi

# Stamp the version into the binaries as the Kubernetes release build does
# (hack/lib/version.sh): without it both report v0.0.0-master+$Format:%H$.
# The build date is the release's own time from the module proxy, so that
# the build is reproducible.
[[ "$kver" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected k8s.io/kubernetes version '$kver'"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
kinfo=${kmod%.mod}.info
bdate=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$kinfo" 2>/dev/null || true)
[[ -n "$bdate" ]] || bdate=1970-01-01T00:00:00Z
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $p.gitVersion=$kver -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.gitCommit= -X $p.buildDate=$bdate"
done

mkdir -p "$bin"
for name in "${todo[@]}"; do
  pkg=${pkgs[$name]}
  log "building $name ($pkg, Kubernetes $kver) into $bin/$name ..."
  start=$SECONDS
  rm -f "$bin/.$name.stamp"
  if ! go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg"; then
    rm -f "$bin/$name.tmp"
    die "building $name failed (see the go errors above; module: $mod)"
  fi
  mv -f "$bin/$name.tmp" "$bin/$name"
  echo "$hash" >"$bin/.$name.stamp"
  log "built $name in $((SECONDS - start))s"
done
