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

	"github.com/eventpipe/eventpipe/internal/registry/resource"
)

// REST is a resource type with no verbs.
type REST struct {
	resource.Type
	kind string
}

var _ rest.KindProvider = (*REST)(nil)

// New returns a verb-less resource type of the given kind.
func New(newObj func() runtime.Object, kind, singular string, namespaced bool) *REST {
	return &REST{Type: resource.New(newObj, singular, namespaced), kind: kind}
}

// Kind implements rest.KindProvider.
func (r *REST) Kind() string { return r.kind }
