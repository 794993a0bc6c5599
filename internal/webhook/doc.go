// Package webhook is the receiver behind POST /ingest/v1/events: it takes
// an Event, an EventList, a JSON array or NDJSON of them (core/v1 or
// events.k8s.io/v1, optionally gzip-compressed), validates every item as the
// Events API validates a create, stamps it with the caller's scope, and
// answers 202 only once every accepted item is durably in JetStream, with
// the refused items listed in the answer. The API server mounts it behind
// its authentication and authorization (internal/apiserver/ingest.go); see
// docs/webhook.md.
package webhook
