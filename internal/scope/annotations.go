package scope

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Annotations that name the scope an event belongs to, on the Events the
// API serves and on those a platform caller writes into a tenant's scope.
const (
	AnnotationType = "platform.miloapis.com/scope.type"
	AnnotationName = "platform.miloapis.com/scope.name"
)

// FromAnnotations returns the scope ev's annotations name, the Platform
// scope when they name none, and why that scope cannot own events, if it
// cannot.
func FromAnnotations(ev *corev1.Event) (Scope, error) {
	typ := ev.Annotations[AnnotationType]
	if typ == "" {
		return Platform, nil
	}
	sc := Scope{Type: typ, Name: ev.Annotations[AnnotationName]}
	return sc, sc.Validate()
}

// Stamp records sc in ev's scope annotations.
func Stamp(ev *corev1.Event, sc Scope) {
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[AnnotationType] = sc.Type
	if sc.Name == "" {
		delete(ev.Annotations, AnnotationName)
	} else {
		ev.Annotations[AnnotationName] = sc.Name
	}
}

// PlatformScopes treats every caller as a platform caller: reads span all
// scopes and a write goes to the scope its annotations name, or to the
// Platform scope. It serves the registries' Scopes interfaces where there
// is no tenancy (tests, tools); internal/tenancy's Scopes replaces it.
type PlatformScopes struct{}

// ReadScope returns nil: every scope.
func (PlatformScopes) ReadScope(context.Context) (*Scope, error) { return nil, nil }

// WriteScope returns the scope ev's annotations name (FromAnnotations).
func (PlatformScopes) WriteScope(_ context.Context, ev *corev1.Event) (Scope, error) {
	return FromAnnotations(ev)
}
