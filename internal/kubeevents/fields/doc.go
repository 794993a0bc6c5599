// Package fields is the field-selector vocabulary for Kubernetes Events, as
// kube-apiserver 1.37 defines it for core/v1 and events.k8s.io/v1.
//
// Both groups are views of one stored record (a core/v1 Event), so both are
// mapped onto one canonical vocabulary: the labels kube-apiserver's event
// strategy exposes for matching (ToSelectableFields in
// pkg/registry/core/event), which use the core/v1 spelling. A client's label
// is first converted with ConvertFieldLabel, exactly as kube-apiserver's list
// and watch handlers convert it through the scheme, and is then matched
// against Fields of the stored event, or translated into a storage query
// through the accessors of Canonical.
//
// Error texts are kube-apiserver's, byte for byte, because clients see them in
// the Status of a 400 response.
package fields
