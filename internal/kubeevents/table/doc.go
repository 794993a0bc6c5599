// Package table renders Kubernetes Events as the server-side Table that
// `kubectl get events` prints, cell for cell as kube-apiserver 1.37 does
// (the Event printer in pkg/printers/internalversion/printers.go of
// k8s.io/kubernetes).
//
// Kube serves events.k8s.io/v1 Events from the same storage as core/v1
// Events, with the same table convertor working on its internal Event, so
// both groups get the same columns and the same cell values. Here an
// events.k8s.io/v1 Event is mapped to its core/v1 form (by a function the
// caller supplies) and printed the same way.
//
// The Table is always the wide one: the server sends every column,
// including those with priority 1 that kubectl shows only with -o wide, and
// every row has a cell for each.
package table
