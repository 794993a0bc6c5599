// Package event is the REST storage of Kubernetes Events, served as core/v1
// and as events.k8s.io/v1: two views of one stored record, the core/v1 Event.
//
// Writes go to the JetStream log and are acknowledged once stored there.
// Reads by name come from the log (so a write is readable at once) and fall
// back to ClickHouse for states the log has trimmed; lists come from
// ClickHouse up to the writer's committed watermark merged with the log
// after it; watches tail the log in order from a resourceVersion (a stream
// sequence).
package event
