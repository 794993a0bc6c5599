#!/usr/bin/env bash
# Fails when a generated file of eventpipe is stale: regenerates everything
# hack/update-codegen.sh writes into a temporary directory and compares it with
# the working tree, which it never modifies. Also fails when tools/codegen's
# go.mod is not tidy or pins a generator other than the root module's library.
# Runs from any directory.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/codegen.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/codegen.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

stale=0

# `go mod tidy -diff` prints what tidy would change and changes nothing.
if ! go -C "${CODEGEN_TOOLS_MODULE}" mod tidy -diff >&2; then
  codegen::log "ERROR: tools/codegen/go.mod or go.sum is not tidy: run 'go -C tools/codegen mod tidy'"
  stale=1
fi

codegen::check_versions

# Some generators write only in place (deepcopy-gen; openapi-gen's model
# name files): keep the committed files aside, regenerate, collect the fresh
# ones, and put the committed ones back, so the working tree is unchanged.
mapfile -t deepcopy_dirs < <(codegen::deepcopy_dirs)
for d in "${deepcopy_dirs[@]}"; do
  mkdir -p "${tmp}/committed/${d}" "${tmp}/fresh/${d}"
  for f in "${IN_PLACE_FILES[@]}"; do
    if [[ -f "${CODEGEN_ROOT}/${d}/${f}" ]]; then
      cp "${CODEGEN_ROOT}/${d}/${f}" "${tmp}/committed/${d}/"
    fi
  done
done
restore_in_place() {
  for d in "${deepcopy_dirs[@]}"; do
    for f in "${IN_PLACE_FILES[@]}"; do
      if [[ -f "${CODEGEN_ROOT}/${d}/${f}" ]]; then
        mv "${CODEGEN_ROOT}/${d}/${f}" "${tmp}/fresh/${d}/"
      fi
      if [[ -f "${tmp}/committed/${d}/${f}" ]]; then
        cp "${tmp}/committed/${d}/${f}" "${CODEGEN_ROOT}/${d}/"
      fi
    done
  done
}
trap 'restore_in_place; rm -rf "${tmp}"' EXIT
# deepcopy first: the OpenAPI generator loads the packages, which need
# their DeepCopyObject methods to type-check.
codegen::deepcopy "${tmp}/bin"
codegen::openapi "${tmp}/bin" "${tmp}/openapi" "${tmp}/api-rule-violations.list"
restore_in_place
trap 'rm -rf "${tmp}"' EXIT

# check COMMITTED FRESH: both relative to their roots, for the messages.
check() {
  local committed="${CODEGEN_ROOT}/$1" fresh="$2"
  if [[ ! -f "${committed}" && ! -f "${fresh}" ]]; then
    return 0 # nothing to generate, nothing committed
  elif [[ ! -f "${committed}" ]]; then
    codegen::log "ERROR: $1 is missing"
    stale=1
  elif ! diff -u --label "$1 (committed)" --label "$1 (regenerated)" "${committed}" "${fresh}" >"${tmp}/diff"; then
    head -n 50 "${tmp}/diff" >&2
    codegen::log "ERROR: $1 is out of date ($(grep -c '^[-+][^-+]' "${tmp}/diff" || true) lines differ; the diff's first 50 lines are above)"
    stale=1
    if [[ "$1" == "${OPENAPI_KNOWN_VIOLATIONS}" ]]; then
      codegen::log "  the API rule violations changed: fix new ones in our own types, or accept"
      codegen::log "  those of upgraded k8s.io/* modules with UPDATE_API_KNOWN_VIOLATIONS=true hack/update-codegen.sh"
    fi
  fi
}
check "${OPENAPI_DIR}/${OPENAPI_FILE}" "${tmp}/openapi/${OPENAPI_FILE}"
for d in "${deepcopy_dirs[@]}"; do
  for f in "${IN_PLACE_FILES[@]}"; do
    check "${d}/${f}" "${tmp}/fresh/${d}/${f}"
  done
done
check "${OPENAPI_KNOWN_VIOLATIONS}" "${tmp}/api-rule-violations.list"

if [[ "${stale}" != 0 ]]; then
  codegen::log "generated code is stale: run hack/update-codegen.sh (make generate) and commit the result"
  exit 1
fi
codegen::log "generated code is up to date"
