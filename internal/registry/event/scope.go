package event

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Scopes decides, per request, which events a caller may read and into
// which scope a write goes: scope.PlatformScopes without tenancy,
// internal/tenancy's Scopes with it.
type Scopes interface {
	// ReadScope returns the scope reads are limited to; nil means every
	// scope (platform callers).
	ReadScope(ctx context.Context) (*scope.Scope, error)
	// WriteScope returns the scope a new or updated event belongs to.
	WriteScope(ctx context.Context, ev *corev1.Event) (scope.Scope, error)
}

// restamp makes an updated event's scope annotations name the scope it is
// stored in. Events of the Platform scope written without annotations stay
// without them, as kube-apiserver would keep them.
func restamp(ev *corev1.Event, sc scope.Scope) {
	_, claimed := ev.Annotations[scope.AnnotationType]
	_, claimedName := ev.Annotations[scope.AnnotationName]
	if sc.IsPlatform() && !claimed && !claimedName {
		return
	}
	scope.Stamp(ev, sc)
}
