package event

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Annotations that name the scope an event belongs to.
const (
	AnnotationScopeType = "platform.miloapis.com/scope.type"
	AnnotationScopeName = "platform.miloapis.com/scope.name"
)

// Scopes decides, per request, which events a caller may read and into
// which scope a write goes.
type Scopes interface {
	// ReadScope returns the scope reads are limited to; nil means every
	// scope (platform callers).
	ReadScope(ctx context.Context) (*scope.Scope, error)
	// WriteScope returns the scope a new or updated event belongs to.
	WriteScope(ctx context.Context, ev *corev1.Event) (scope.Scope, error)
}

// PlatformScopes treats every caller as a platform caller: reads span all
// scopes and a write goes to the scope its annotations name, or to the
// Platform scope. Tenant scoping replaces it.
type PlatformScopes struct{}

// ReadScope implements Scopes.
func (PlatformScopes) ReadScope(context.Context) (*scope.Scope, error) { return nil, nil }

// WriteScope implements Scopes.
func (PlatformScopes) WriteScope(_ context.Context, ev *corev1.Event) (scope.Scope, error) {
	typ := ev.Annotations[AnnotationScopeType]
	if typ == "" {
		return scope.Platform, nil
	}
	sc := scope.Scope{Type: typ, Name: ev.Annotations[AnnotationScopeName]}
	return sc, sc.Validate()
}

// StampScope records sc in ev's scope annotations.
func StampScope(ev *corev1.Event, sc scope.Scope) {
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[AnnotationScopeType] = sc.Type
	if sc.Name == "" {
		delete(ev.Annotations, AnnotationScopeName)
	} else {
		ev.Annotations[AnnotationScopeName] = sc.Name
	}
}

// restamp makes an updated event's scope annotations name the scope it is
// stored in. Events of the Platform scope written without annotations stay
// without them, as kube-apiserver would keep them.
func restamp(ev *corev1.Event, sc scope.Scope) {
	_, claimed := ev.Annotations[AnnotationScopeType]
	_, claimedName := ev.Annotations[AnnotationScopeName]
	if sc.IsPlatform() && !claimed && !claimedName {
		return
	}
	StampScope(ev, sc)
}
