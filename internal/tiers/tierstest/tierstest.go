// Package tierstest holds what the tests of internal/tiers and of the
// packages that enforce tiers (quota, ratelimit, retention) share: the
// tenants their tier files name, and tier configs built from YAML text.
package tierstest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tiers"
)

// Alpha and Beta are the two projects the tests' tier files assign tiers to
// ("Project/alpha", "Project/beta").
var (
	Alpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	Beta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
)

// Config parses yaml as a tiers file and fails the test when it does not
// parse: a fixture that is not valid is a broken test, not a case.
func Config(tb testing.TB, yaml string) *tiers.Config {
	tb.Helper()
	c, err := tiers.Parse("test.yaml", []byte(yaml))
	require.NoError(tb, err)
	return c
}

// Resolver serves the tiers file yaml, as a running service would after
// loading it.
func Resolver(tb testing.TB, yaml string) *tiers.Resolver {
	tb.Helper()
	return tiers.NewResolver(Config(tb, yaml))
}

// Projects returns n distinct projects (p0, p1, …) that no tier file names,
// so they all fall to the default tier: for benchmarks that spread their
// calls over many tenants.
func Projects(n int) []scope.Scope {
	ps := make([]scope.Scope, n)
	for i := range ps {
		ps[i] = scope.Scope{Type: scope.TypeProject, Name: fmt.Sprintf("p%d", i)}
	}
	return ps
}
