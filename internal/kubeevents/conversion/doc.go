// Package conversion maps Kubernetes Events between the two API groups that
// serve them: core/v1 and events.k8s.io/v1.
//
// eventpipe stores one record per event, a core/v1 Event, and renders it in
// whichever group a client asked for. kube-apiserver does the same through
// its internal core Event, and the internal type has the same fields as
// core/v1, so the mapping here is exactly the one kube-apiserver 1.37 applies
// between its internal Event and events.k8s.io/v1 (pkg/apis/events/v1 in
// k8s.io/kubernetes). The mapping is total in both directions: every field of
// either group has a home in the other, so nothing is lost on a round trip.
package conversion
