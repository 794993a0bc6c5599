// Package clickhouse is the query store: the events table in ClickHouse, its
// migrations, the mapping between an event state and a row, and the queries.
//
// The table keeps every state of every event (one row per JetStream message).
// Readers ask for the latest state of each event at or below a sequence (the
// writer's watermark), so duplicates from at-least-once delivery and older
// states never reach a caller twice (invariant 2,
// docs/architecture.md#2-exactly-once-view).
//
// The SQL keeps to what ClickHouse 18.16 runs. Newer servers get extras (skip
// indexes, TTL) from migrations gated on the detected version; nothing depends
// on them for correctness.
//
// The store runs on one server or, with Config.Cluster, on a cluster of
// replicated shards: replicated local tables under Distributed tables
// sharded by each row's identity (cluster.go, docs/clickhouse-cluster.md).
package clickhouse
