package exporter

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
)

// source lists and watches Events in one API group and hands them out in
// their core/v1 form, the superset eventpipe stores.
type source struct {
	cs kubernetes.Interface
	// eventsV1 is true when reading events.k8s.io/v1.
	eventsV1 bool
}

// newSource picks the API group: the forced one, else events.k8s.io/v1
// when the source serves it (every supported Kubernetes does; core/v1 is
// the fallback for old or trimmed-down API servers).
func newSource(ctx context.Context, cs kubernetes.Interface, forced string) (*source, error) {
	switch forced {
	case "events.k8s.io":
		return &source{cs: cs, eventsV1: true}, nil
	case "core":
		return &source{cs: cs}, nil
	}
	rl, err := cs.Discovery().ServerResourcesForGroupVersion(eventsv1.SchemeGroupVersion.String())
	if apierrors.IsNotFound(err) {
		return &source{cs: cs}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s on the source cluster: %w", eventsv1.SchemeGroupVersion, err)
	}
	for _, r := range rl.APIResources {
		if r.Name == "events" {
			for _, v := range r.Verbs {
				if v == "watch" {
					return &source{cs: cs, eventsV1: true}, nil
				}
			}
		}
	}
	return &source{cs: cs}, nil
}

// groupVersion names the API being read, for logs and metrics.
func (s *source) groupVersion() string {
	if s.eventsV1 {
		return eventsv1.SchemeGroupVersion.String()
	}
	return corev1.SchemeGroupVersion.String()
}

// list returns one page of Events in namespace ("" for all), in core/v1
// form, with the list's resourceVersion and continue token.
func (s *source) list(ctx context.Context, namespace string, opts metav1.ListOptions) ([]*corev1.Event, metav1.ListMeta, error) {
	if s.eventsV1 {
		l, err := s.cs.EventsV1().Events(namespace).List(ctx, opts)
		if err != nil {
			return nil, metav1.ListMeta{}, err
		}
		out := make([]*corev1.Event, len(l.Items))
		for i := range l.Items {
			out[i] = conversion.FromEventsV1(&l.Items[i])
		}
		return out, l.ListMeta, nil
	}
	l, err := s.cs.CoreV1().Events(namespace).List(ctx, opts)
	if err != nil {
		return nil, metav1.ListMeta{}, err
	}
	out := make([]*corev1.Event, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, l.ListMeta, nil
}

// watch opens a watch on Events in namespace.
func (s *source) watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	if s.eventsV1 {
		return s.cs.EventsV1().Events(namespace).Watch(ctx, opts)
	}
	return s.cs.CoreV1().Events(namespace).Watch(ctx, opts)
}

// toCore returns the core/v1 form of a watched object, and its
// resourceVersion (bookmarks carry only that).
func toCore(obj runtime.Object) (*corev1.Event, string, error) {
	switch o := obj.(type) {
	case *corev1.Event:
		return o, o.ResourceVersion, nil
	case *eventsv1.Event:
		return conversion.FromEventsV1(o), o.ResourceVersion, nil
	}
	return nil, "", fmt.Errorf("watch delivered %T, want an Event", obj)
}
