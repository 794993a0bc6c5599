package eventquery

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/fieldselector"
	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Resource is what a query kind of activity.miloapis.com/v1alpha1
// (EventQuery, EventFacetQuery) is to the API machinery: create-only,
// cluster-scoped (the namespace is a spec field, so one query can span
// namespaces), persisting nothing. Its REST storage embeds it.
type Resource struct {
	resource.Type
	gvk schema.GroupVersionKind
}

// NewResource returns the Resource of kind, whose objects newObj makes.
func NewResource(kind string, newObj func() runtime.Object) Resource {
	return Resource{Type: resource.New(newObj, strings.ToLower(kind), false), gvk: v1alpha1.SchemeGroupVersion.WithKind(kind)}
}

var _ rest.GroupVersionKindProvider = Resource{}

// GroupVersionKind implements rest.GroupVersionKindProvider.
func (r Resource) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind { return r.gvk }

// GroupKind returns the kind, for errors about one of its objects.
func (r Resource) GroupKind() schema.GroupKind { return r.gvk.GroupKind() }

// Begin does what every query's Create does first: it takes obj as the
// kind's T, runs createValidation, and returns the caller's read scope and
// the time the query is answered at (now, or time.Now when now is nil).
func Begin[T runtime.Object](ctx context.Context, r Resource, obj runtime.Object, createValidation rest.ValidateObjectFunc,
	scopes Scopes, now func() time.Time) (q T, sc *scope.Scope, at time.Time, err error) {
	q, ok := obj.(T)
	if !ok {
		return q, nil, at, apierrors.NewBadRequest(fmt.Sprintf("not an %s: %T", r.gvk.Kind, obj))
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return q, nil, at, err
		}
	}
	at = time.Now()
	if now != nil {
		at = now()
	}
	sc, err = scopes.ReadScope(ctx)
	return q, sc, at, err
}

// Filter returns the store's filter of a query in scope sc over window w,
// as of sequence atSeq, with the selector's requirements, in namespace ns
// (every namespace when empty).
func Filter(sc *scope.Scope, w Window, atSeq uint64, sel []fieldselector.Requirement, ns string) chstore.HistoryFilter {
	hf := chstore.HistoryFilter{Scope: sc, Start: w.Start, End: w.End, AtSeq: atSeq, Selector: sel}
	if ns != "" {
		hf.Namespace = &ns
	}
	return hf
}

// Created gives an answered query the creation time a stored object would
// have, unless its creator set one.
func Created(m *metav1.ObjectMeta, now time.Time) {
	if m.CreationTimestamp.IsZero() {
		m.CreationTimestamp = metav1.NewTime(now.Truncate(time.Second))
	}
}
