package listquery

import (
	"context"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// ScopeReader gives the scope a caller may read: nil means every scope.
// An error is the answer to the request as it is (a 403, say).
type ScopeReader interface {
	ReadScope(ctx context.Context) (*scope.Scope, error)
}

// Request is a list or a watch of a namespaced kind, as its registry
// begins to serve it.
type Request struct {
	// Opts are the request's options, never nil.
	Opts *metainternalversion.ListOptions
	// Scope is the caller's read scope; nil means every scope.
	Scope *scope.Scope
	// Namespace is the request's namespace, metav1.NamespaceAll for all.
	Namespace string
	// Query is what Opts select.
	Query Query
}

// Begin starts serving a list or watch with opts the way both registries
// do: options defaulted, then check (when not nil) refusing what the kind
// cannot select, then the caller's scope. The order is the order of the
// answers when more than one thing is wrong, so it must not change.
func Begin(ctx context.Context, opts *metainternalversion.ListOptions, check func(*metainternalversion.ListOptions) error, scopes ScopeReader) (Request, error) {
	if opts == nil {
		opts = &metainternalversion.ListOptions{}
	}
	if check != nil {
		if err := check(opts); err != nil {
			return Request{}, err
		}
	}
	sc, err := scopes.ReadScope(ctx)
	if err != nil {
		return Request{}, err
	}
	return Request{Opts: opts, Scope: sc, Namespace: genericapirequest.NamespaceValue(ctx), Query: New(opts)}, nil
}

// NamespaceFilter returns the namespace a log subject filter narrows to,
// nil for every namespace.
func (r Request) NamespaceFilter() *string {
	if r.Namespace == metav1.NamespaceAll {
		return nil
	}
	ns := r.Namespace
	return &ns
}
