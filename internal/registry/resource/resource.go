// Package resource holds what every resource type eventpipe serves is to
// the API machinery apart from its verbs: the object it decodes requests
// into, its singular name, whether it is namespaced, and nothing to
// destroy. Each registry's REST storage embeds a Type and adds its verbs
// (and, where it has them, its kind, list object and short names).
package resource

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Type is the part of a REST storage every resource type has.
type Type struct {
	newObj     func() runtime.Object
	singular   string
	namespaced bool
}

// New returns the Type of a resource whose objects newObj makes, named
// singular in discovery, namespaced or cluster-scoped.
func New(newObj func() runtime.Object, singular string, namespaced bool) Type {
	return Type{newObj: newObj, singular: singular, namespaced: namespaced}
}

var (
	_ rest.Storage              = Type{}
	_ rest.Scoper               = Type{}
	_ rest.SingularNameProvider = Type{}
)

// New implements rest.Storage.
func (t Type) New() runtime.Object { return t.newObj() }

// Destroy implements rest.Storage: eventpipe's storages hold nothing of
// their own to release (their backends are closed by whoever opened them).
func (t Type) Destroy() {}

// NamespaceScoped implements rest.Scoper.
func (t Type) NamespaceScoped() bool { return t.namespaced }

// GetSingularName implements rest.SingularNameProvider.
func (t Type) GetSingularName() string { return t.singular }
