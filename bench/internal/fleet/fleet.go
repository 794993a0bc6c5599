// Package fleet is the simulated set of tenants the benchmarks generate
// events for, shared so that their numbers describe the same traffic.
package fleet

import (
	"fmt"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Tenants are the simulated clusters: 20 tenants of the three tenant kinds,
// mostly projects, as in production.
func Tenants() []scope.Scope {
	var out []scope.Scope
	for i := range 14 {
		out = append(out, scope.Scope{Type: scope.TypeProject, Name: fmt.Sprintf("project-%02d", i)})
	}
	for i := range 4 {
		out = append(out, scope.Scope{Type: scope.TypeOrganization, Name: fmt.Sprintf("org-%02d", i)})
	}
	for i := range 2 {
		out = append(out, scope.Scope{Type: scope.TypeUser, Name: fmt.Sprintf("user-%02d", i)})
	}
	return out
}
