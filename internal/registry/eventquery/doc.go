// Package eventquery is the REST storage of EventQuery
// (activity.miloapis.com/v1alpha1): a create-only resource that searches
// stored event history and answers in status, persisting nothing.
//
// It also holds what EventFacetQuery shares with it: the storage of a
// create-only query kind and the first steps of answering one (Resource,
// Begin, Filter, Created), the time window rules (Window), the tier's
// query window (QueryWindow), the field selector's validation, and the
// mapping of store errors to API errors. AuditLogQuery
// (internal/registry/auditlogquery) reuses the same parts.
package eventquery
