// Package apiserver assembles eventpipe's Kubernetes API server on
// k8s.io/apiserver: Options (flags) → Config → CompletedConfig → Server.
// It serves core/v1 Events under /api/v1 and events.k8s.io/v1 Events, from
// the JetStream log and the ClickHouse index (internal/registry/event).
package apiserver
