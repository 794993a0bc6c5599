// Package eventlog is the durable log of event states: the JetStream stream
// EVENTS, its subjects, the message format, the publisher and the readers.
// Its readers serve the ACTIVITIES stream as well: StreamReader for lists
// and watches, Durable for the stages that move states on in order (the
// writer, the activity processor and the activity indexer).
//
// One message holds one state of one event (created, updated or deleted) and
// carries the whole core/v1 Event, the superset of events.k8s.io/v1. The
// message's stream sequence is that state's resourceVersion, so the log is
// both the write-ahead buffer in front of ClickHouse and the source of watches.
package eventlog
