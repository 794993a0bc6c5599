// Package refonly lists, in discovery, resource types that events refer to
// but eventpipe does not serve (pods, nodes, ...).
//
// kubectl resolves `kubectl events --for pod/web` through discovery, so the
// type must be known; it has no verbs, so every request for it is answered
// 404 Not Found: this server does not serve it.
package refonly

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
)

// REST is a resource type with no verbs.
type REST struct {
	newObj     func() runtime.Object
	kind       string
	singular   string
	namespaced bool
}

var (
	_ rest.Storage              = (*REST)(nil)
	_ rest.Scoper               = (*REST)(nil)
	_ rest.KindProvider         = (*REST)(nil)
	_ rest.SingularNameProvider = (*REST)(nil)
)

// New returns a verb-less resource type of the given kind.
func New(newObj func() runtime.Object, kind, singular string, namespaced bool) *REST {
	return &REST{newObj: newObj, kind: kind, singular: singular, namespaced: namespaced}
}

func (r *REST) New() runtime.Object     { return r.newObj() }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return r.namespaced }
func (r *REST) Kind() string            { return r.kind }
func (r *REST) GetSingularName() string { return r.singular }
