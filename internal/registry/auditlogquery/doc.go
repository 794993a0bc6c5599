// Package auditlogquery is the REST storage of AuditLogQuery
// (activity.miloapis.com/v1alpha1): a create-only resource that searches
// the stored audit log and answers in status, persisting nothing.
//
// It follows EventQuery and reuses its parts (internal/registry/eventquery):
// the create-only resource, the time window and the tier's query window,
// the signed continue token, the caller's scope and the mapping of store
// errors to API errors. What is its own: the filters of the spec and their
// validation, and the audit records' order in the token.
package auditlogquery
