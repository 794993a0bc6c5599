// Package exporter copies the Events of a real Kubernetes cluster into the
// EVENTS stream: it lists and watches Events (events.k8s.io/v1 when the
// cluster serves it, core/v1 otherwise) and publishes every state it sees,
// stamped with the cluster's tenant scope and a source-cluster label.
//
// Two properties shape it:
//
//   - No duplicates. A state's message id is derived from the source object
//     (its uid and source resourceVersion, plus a marker for deletes), so
//     JetStream stores a state once however often a relist, a restart or a
//     second replica publishes it.
//   - No loss. The resume point, the newest source resourceVersion below
//     which every state has been acknowledged by JetStream, is kept in the
//     EVENTPIPE_STATE key-value bucket and advanced only after those
//     acknowledgements; a restart watches from there, and a resume point the
//     source has compacted away (410 Gone) leads to a relist that publishes
//     only what changed since.
//
// It keeps no copy of the cluster: a list is processed page by page, and at
// most Config.MaxInFlight states are between the watch and JetStream's
// acknowledgement; when that many are pending the watch is not read, so
// backpressure reaches the source's TCP stream instead of a buffer.
package exporter
