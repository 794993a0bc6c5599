// Package watchtail is the shared watch tail: how an API server's watches,
// and its consistent reads of the states the index has not committed yet,
// get their states from the EVENTS log.
//
// One Hub per server reads the whole stream once, decodes each state once,
// keeps the newest in a ring and hands each state to every watch whose
// subjects it is on, as the same read-only record with what the watches
// derive from it (a Memo) made once for all of them. A watch or a read the
// ring cannot serve gets the states from JetStream on its own. Source makes
// that choice; callers see a Feed either way.
//
// The package speaks of log states, sequences and subject filters only, so
// that every front door over the log can use it: today the Kubernetes Events
// registry (internal/registry/event, through internal/registry/tailwatch,
// which turns a Feed into a Kubernetes watch), later an etcd front's Watch.
package watchtail
