// Package tiers holds the commercial tiers (Free, Pro, Enterprise and any an
// operator adds), which tier each tenant is on, per-tenant overrides, and the
// Kubernetes errors a tenant sees when it hits a limit.
//
// A Config is parsed from a YAML file (Parse), published through a Resolver
// and replaced without a restart by a Watcher that polls the file. The limits
// themselves are enforced by the subpackages: ratelimit (events per minute,
// shared across API server replicas through a JetStream key-value bucket),
// quota (bytes stored per tenant, measured from ClickHouse) and retention
// (deleting what is past each tenant's retention). docs/tiers.md is the
// user-facing description.
package tiers
