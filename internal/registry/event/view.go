package event

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	"github.com/eventpipe/eventpipe/internal/kubeevents/core"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// view adapts the stored record, a core/v1 Event, to the type one API group
// serves.
type view struct {
	gv schema.GroupVersion
	// newObj returns an empty external Event of the group.
	newObj func() runtime.Object
	// external returns o, the group's external Event, as the stored record.
	external func(o runtime.Object) (*corev1.Event, bool)
	fromCore func(*corev1.Event) runtime.Object
	// list wraps events in the group's list type.
	list func(items []corev1.Event, lm metav1.ListMeta) runtime.Object
	// encodings is what the group's watches share of a state the shared
	// watch tail hands to all of them: its object and encodings.
	encodings *watchtail.Memo[*encodings]
}

// toCore returns what a request carried as the stored record. Requests of
// both groups are decoded into the internal Event, which has the stored
// record's fields; the group's external type is accepted too.
func (v view) toCore(o runtime.Object) (*corev1.Event, error) {
	if ev, ok := o.(*core.Event); ok {
		return ev.V1(), nil
	}
	if ev, ok := v.external(o); ok {
		return ev, nil
	}
	return nil, fmt.Errorf("not an Event of %s: %T", v.gv, o)
}

// CoreV1 serves the stored record as it is.
var CoreV1 = view{
	gv:        corev1.SchemeGroupVersion,
	encodings: watchtail.NewMemo[*encodings]("core/v1 watch encodings"),
	newObj:    func() runtime.Object { return &corev1.Event{} },
	external: func(o runtime.Object) (*corev1.Event, bool) {
		ev, ok := o.(*corev1.Event)
		return ev, ok
	},
	fromCore: func(ev *corev1.Event) runtime.Object { return ev },
	list: func(items []corev1.Event, lm metav1.ListMeta) runtime.Object {
		return &corev1.EventList{ListMeta: lm, Items: items}
	},
}

// EventsV1 serves the record as events.k8s.io/v1, converting as
// kube-apiserver does.
var EventsV1 = view{
	gv:        eventsv1.SchemeGroupVersion,
	encodings: watchtail.NewMemo[*encodings]("events.k8s.io/v1 watch encodings"),
	newObj:    func() runtime.Object { return &eventsv1.Event{} },
	external: func(o runtime.Object) (*corev1.Event, bool) {
		ev, ok := o.(*eventsv1.Event)
		if !ok {
			return nil, false
		}
		return conversion.FromEventsV1(ev), true
	},
	fromCore: func(ev *corev1.Event) runtime.Object { return conversion.ToEventsV1(ev) },
	list: func(items []corev1.Event, lm metav1.ListMeta) runtime.Object {
		// The list conversion leaves items without kind and apiVersion, as
		// kube-apiserver's list items are.
		return conversion.ToEventsV1List(&corev1.EventList{ListMeta: lm, Items: items})
	},
}
