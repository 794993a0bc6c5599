// Package roles builds each of eventpipe's roles (API server, writer,
// activity processor, exporter) from its options and the connections it
// shares with the others. The subcommands (internal/cli) and dev mode
// (internal/devenv) both call these constructors, so dev mode and the tests
// that start it run the roles as operators run them; what differs is only
// what they are given: dev mode's embedded servers, its own metrics
// registry and its settings.
//
// Each constructor connects what its role needs and starts nothing that
// outlives a failed start-up; Run serves until its context ends. The
// context a constructor takes bounds the background work some parts start
// as they are built (watches of key-value buckets, the shared watch tail),
// so callers pass the same context to both.
package roles
