package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
)

// Scheme knows every type eventpipe serves.
//
// eventpipe stores no internal representation of its own: each served type
// is registered both as its external version and as the group's internal
// version, so the apiserver's conversions between the two are no-ops and
// the objects handled by storage are the k8s.io/api types themselves.
var Scheme = runtime.NewScheme()

// Codecs encodes and decodes for every group in Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

// ParameterCodec decodes query parameters.
var ParameterCodec = runtime.NewParameterCodec(Scheme)

func init() {
	must(addEventTypes(Scheme, corev1.SchemeGroupVersion, &corev1.Event{}, &corev1.EventList{}))
	must(addEventTypes(Scheme, eventsv1.SchemeGroupVersion, &eventsv1.Event{}, &eventsv1.EventList{}))
	// Options, Status, WatchEvent and friends, in the core group's v1 as
	// kube-apiserver has them, and their internal versions.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	must(metainternalversion.AddToScheme(Scheme))
	Scheme.AddUnversionedTypes(schema.GroupVersion{Group: "", Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	must(Scheme.SetVersionPriority(corev1.SchemeGroupVersion))
	must(Scheme.SetVersionPriority(eventsv1.SchemeGroupVersion))
}

func addEventTypes(s *runtime.Scheme, gv schema.GroupVersion, ev, list runtime.Object) error {
	internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
	s.AddKnownTypes(gv, ev, list)
	s.AddKnownTypes(internal, ev, list)
	if gv.Group != "" {
		metav1.AddToGroupVersion(s, gv)
	}
	// Field selectors arrive in the group's vocabulary; storage matches
	// them in one canonical vocabulary (the core/v1 labels).
	return s.AddFieldLabelConversionFunc(gv.WithKind("Event"), func(label, value string) (string, string, error) {
		return fields.ConvertFieldLabel(gv.Group, label, value)
	})
}

func must(err error) {
	if err != nil {
		panic("BUG: build scheme: " + err.Error())
	}
}
