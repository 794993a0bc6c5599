// Package openapi holds the generated OpenAPI definitions of every type eventpipe serves.
//
// zz_generated.openapi.go is written by hack/update-codegen.sh (openapi-gen
// from k8s.io/kube-openapi, pinned in tools/codegen/go.mod) and checked by
// hack/verify-codegen.sh; never edit it by hand. It covers k8s.io/api/core/v1,
// k8s.io/api/events/v1 and the k8s.io/apimachinery packages their types
// reference (meta/v1, runtime, version, api/resource, util/intstr).
//
// The definitions are keyed by OpenAPI model name ("io.k8s.api.core.v1.Event"),
// not by Go type name ("k8s.io/api/core/v1.Event"): the k8s.io/api packages
// carry +k8s:openapi-model-package tags and OpenAPIModelName methods, which
// the apiserver also uses to look definitions up (util.GetCanonicalTypeName)
// and to attach x-kubernetes-group-version-kind (the DefinitionNamer).
//
// Configure wires the definitions into a k8s.io/apiserver server config, for
// /openapi/v2 and /openapi/v3, which kubectl explain, kubectl apply and
// kubectl's field validation read.
package openapi
