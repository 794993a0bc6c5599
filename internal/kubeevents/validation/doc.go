// Package validation checks Kubernetes Events the way kube-apiserver 1.37
// checks them, so that clients get the same field errors (type, field path,
// value and detail) from eventpipe as from a real cluster.
//
// Events reach eventpipe as core/v1 or events.k8s.io/v1 objects and are
// stored as core/v1 Events, the superset of both. kube-apiserver validates
// its internal Event, which has the core/v1 shape, so every field path here
// is a core/v1 path (involvedObject.namespace, message, count, ...) whichever
// group the request came through: kube does not translate paths back into
// events.k8s.io/v1 names (regarding, note, deprecatedCount, ...). The one
// place where the request group shows in a path is the reporting controller
// of a legacy-style check: "reportingComponent" for core/v1 requests (the
// core/v1 JSON name), "reportingController" otherwise.
//
// # What lives where
//
// kube-apiserver splits the work between the Event strategy
// (pkg/registry/core/event/strategy.go in k8s.io/kubernetes) and the generic
// registry (k8s.io/apiserver/pkg/registry/rest). This package mirrors the
// split:
//
//   - ValidateCreate and ValidateUpdate are the strategy's Validate and
//     ValidateUpdate (kube's ValidateEventCreate and ValidateEventUpdate in
//     pkg/apis/core/validation/events.go). A strategy handed to
//     rest.BeforeCreate / rest.BeforeUpdate returns these, and the generic
//     code adds its own metadata checks.
//   - ValidateCreateWithGeneric and ValidateUpdateWithGeneric add those
//     generic metadata checks in the same order and under the same conditions
//     as rest.ValidateCreate / rest.ValidateUpdate, for callers that do not go
//     through rest.BeforeCreate / rest.BeforeUpdate. They give the complete
//     list a client would see, repeated errors dropped as kube drops them
//     (Deduplicate; a strategy used with rest.BeforeCreate/BeforeUpdate must
//     arrange that itself, see there).
//   - PrepareForCreate and PrepareForUpdate are the strategy's hooks. Kube's
//     Event strategy changes nothing in either, and neither do they. What
//     the generic registry does around them (uid, creationTimestamp,
//     generation, deletion fields) is described on each.
//
// Declarative validation is wired into kube's Event strategy too. Every
// declarative rule that applies to an Event (all on metadata) is at the alpha
// stability level in 1.37, so none of them ever reaches a client and they
// are not reproduced here; the one visible effect of the wiring is that the
// final error list loses repeated errors (see Deduplicate).
package validation
