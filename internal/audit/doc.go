// Package audit keeps kube-apiserver's audit records beside the events
// they caused: the AUDIT stream (one message per record, one stage of one
// request, deduplicated by auditID and stage) and the indexer that moves
// the records into ClickHouse and publishes the audit watermark.
//
// The receiver that takes the records from kube-apiserver's audit webhook
// is internal/webhook (AuditHandler); the Activities made from them are
// internal/activity's.
package audit
