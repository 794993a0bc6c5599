// Package writer moves event states from the EVENTS stream into ClickHouse.
//
// It reads the stream in order through one durable pull consumer, inserts
// batches (bounded by rows and by time), and acknowledges a batch only after
// ClickHouse has committed it. It then publishes the committed watermark: the
// highest stream sequence such that every event state at or below it is
// queryable. The API server answers lists from ClickHouse up to that
// watermark and from the log after it, which is what makes a list followed
// by a watch from its resourceVersion lose and repeat nothing (invariant 3,
// docs/architecture.md#3-list-watch-contract).
//
// Exactly one writer may run against a stream at a time: the consumer
// acknowledges with AckAll, so a second writer could acknowledge states the
// first still holds.
package writer
