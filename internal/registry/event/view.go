package event

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
)

// view adapts the stored record, a core/v1 Event, to the type one API group
// serves.
type view struct {
	gv       schema.GroupVersion
	newObj   func() runtime.Object
	newList  func() runtime.Object
	toCore   func(runtime.Object) (*corev1.Event, error)
	fromCore func(*corev1.Event) runtime.Object
	// list wraps events in the group's list type.
	list func(items []corev1.Event, lm metav1.ListMeta) runtime.Object
}

// CoreV1 serves the stored record as it is.
var CoreV1 = view{
	gv:      corev1.SchemeGroupVersion,
	newObj:  func() runtime.Object { return &corev1.Event{} },
	newList: func() runtime.Object { return &corev1.EventList{} },
	toCore: func(o runtime.Object) (*corev1.Event, error) {
		ev, ok := o.(*corev1.Event)
		if !ok {
			return nil, fmt.Errorf("not a core/v1 Event: %T", o)
		}
		return ev, nil
	},
	fromCore: func(ev *corev1.Event) runtime.Object { return ev },
	list: func(items []corev1.Event, lm metav1.ListMeta) runtime.Object {
		return &corev1.EventList{ListMeta: lm, Items: items}
	},
}

// EventsV1 serves the record as events.k8s.io/v1, converting as
// kube-apiserver does.
var EventsV1 = view{
	gv:      eventsv1.SchemeGroupVersion,
	newObj:  func() runtime.Object { return &eventsv1.Event{} },
	newList: func() runtime.Object { return &eventsv1.EventList{} },
	toCore: func(o runtime.Object) (*corev1.Event, error) {
		ev, ok := o.(*eventsv1.Event)
		if !ok {
			return nil, fmt.Errorf("not an events.k8s.io/v1 Event: %T", o)
		}
		return conversion.FromEventsV1(ev), nil
	},
	fromCore: func(ev *corev1.Event) runtime.Object { return conversion.ToEventsV1(ev) },
	list: func(items []corev1.Event, lm metav1.ListMeta) runtime.Object {
		// The list conversion leaves items without kind and apiVersion, as
		// kube-apiserver's list items are.
		return conversion.ToEventsV1List(&corev1.EventList{ListMeta: lm, Items: items})
	},
}
