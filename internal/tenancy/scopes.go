package tenancy

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Scopes scopes every read and write of a request to its caller: the
// registries' Scopes interfaces (event.Scopes and the like) take it.
type Scopes struct{ Resolver *Resolver }

// ReadScope limits a tenant's reads to its own scope; platform callers read
// every scope (nil).
func (s Scopes) ReadScope(ctx context.Context) (*scope.Scope, error) {
	c, err := s.Resolver.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	if c.Platform {
		return nil, nil
	}
	sc := c.Scope
	return &sc, nil
}

// WriteScope stamps a tenant's event with the tenant's scope, overwriting
// whatever scope annotations it claimed. A platform caller may write into
// any scope by naming it in the annotations (the Platform scope without).
func (s Scopes) WriteScope(ctx context.Context, ev *corev1.Event) (scope.Scope, error) {
	c, err := s.Resolver.FromContext(ctx)
	if err != nil {
		return scope.Scope{}, err
	}
	if c.Platform {
		return scope.FromAnnotations(ev)
	}
	scope.Stamp(ev, c.Scope)
	return c.Scope, nil
}

// CallerScope is the scope a caller's own records belong to when they do
// not name one (audit records from a cluster): a tenant's scope, or the
// Platform scope for platform callers.
func (s Scopes) CallerScope(ctx context.Context) (scope.Scope, error) {
	c, err := s.Resolver.FromContext(ctx)
	if err != nil {
		return scope.Scope{}, err
	}
	return c.Scope, nil
}
