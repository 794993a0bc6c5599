#!/usr/bin/env bash
# Regenerates every generated file of eventpipe:
#   pkg/apis/*/*/zz_generated.deepcopy.go               (deepcopy-gen)
#   internal/apiserver/openapi/zz_generated.openapi.go  (openapi-gen)
#   pkg/apis/*/*/zz_generated.model_name.go             (openapi-gen)
# with the generators pinned in tools/codegen/go.mod. Idempotent; runs from any
# directory. hack/verify-codegen.sh checks that the committed files are current.
#
# The API linter's report must equal hack/api-rule-violations.list; set
# UPDATE_API_KNOWN_VIOLATIONS=true to accept a changed report (after bumping
# the k8s.io/* modules, say) instead of failing.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/codegen.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/codegen.sh"

UPDATE_API_KNOWN_VIOLATIONS="${UPDATE_API_KNOWN_VIOLATIONS:-false}"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

start=${SECONDS}
codegen::check_versions

codegen::log "generating ${DEEPCOPY_FILE} in $(codegen::deepcopy_dirs | tr '\n' ' ')"
codegen::deepcopy "${tmp}/bin"

codegen::log "generating ${OPENAPI_DIR}/${OPENAPI_FILE}"
codegen::openapi "${tmp}/bin" "${tmp}/openapi" "${tmp}/api-rule-violations.list"

known="${CODEGEN_ROOT}/${OPENAPI_KNOWN_VIOLATIONS}"
if [[ "${UPDATE_API_KNOWN_VIOLATIONS}" == true ]]; then
  cp "${tmp}/api-rule-violations.list" "${known}"
  codegen::log "wrote ${OPENAPI_KNOWN_VIOLATIONS}"
elif ! diff -u "${known}" "${tmp}/api-rule-violations.list" >&2; then
  codegen::log "ERROR: the API rule violations reported by openapi-gen differ from ${OPENAPI_KNOWN_VIOLATIONS}"
  codegen::log "  (diff above: '+' lines are new violations). Fix new violations in our own types;"
  codegen::log "  if they come from upgraded k8s.io/* modules, accept them with"
  codegen::log "  UPDATE_API_KNOWN_VIOLATIONS=true hack/update-codegen.sh"
  codegen::log "  ${OPENAPI_DIR}/${OPENAPI_FILE} was left unchanged."
  exit 1
fi

# Replace the committed file only when generation and the API rule check succeeded.
mkdir -p "${CODEGEN_ROOT}/${OPENAPI_DIR}"
cp "${tmp}/openapi/${OPENAPI_FILE}" "${CODEGEN_ROOT}/${OPENAPI_DIR}/${OPENAPI_FILE}"
codegen::log "done in $((SECONDS - start))s"
