// Package activity turns Kubernetes Events into human-readable Activities.
//
// An ActivityPolicy (activity.miloapis.com/v1alpha1) lists, for one kind of
// resource, rules made of a CEL condition and a summary template with
// {{ CEL }} parts. This package compiles policies (once per policy version),
// validates them for admission, evaluates them against events, ships the
// built-in policies, and runs the processor: a durable JetStream consumer on
// EVENTS that publishes one Activity state per event state into the
// ACTIVITIES stream, and an indexer that moves those states into ClickHouse
// and publishes the activity watermark, the way the writer does for events.
package activity
