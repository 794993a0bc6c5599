package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiconversion "k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	"github.com/eventpipe/eventpipe/internal/kubeevents/core"
	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Scheme knows every type eventpipe serves.
//
// As in kube-apiserver, both groups share one internal Event (core.Event,
// with the fields of core/v1): requests are decoded into it, whichever
// group they came through, and answers are converted from it, or given to
// the encoder already in the group's external type.
var Scheme = runtime.NewScheme()

// Codecs encodes and decodes for every group in Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

// ParameterCodec decodes query parameters.
var ParameterCodec = runtime.NewParameterCodec(Scheme)

func init() {
	must(addEventTypes(Scheme, corev1.SchemeGroupVersion, &corev1.Event{}, &corev1.EventList{}))
	must(addEventTypes(Scheme, eventsv1.SchemeGroupVersion, &eventsv1.Event{}, &eventsv1.EventList{}))
	must(addConversions(Scheme))
	// Options, Status, WatchEvent and friends, in the core group's v1 as
	// kube-apiserver has them, and their internal versions.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	must(metainternalversion.AddToScheme(Scheme))
	Scheme.AddUnversionedTypes(schema.GroupVersion{Group: "", Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	must(Scheme.SetVersionPriority(corev1.SchemeGroupVersion))
	must(Scheme.SetVersionPriority(eventsv1.SchemeGroupVersion))
	must(activityv1alpha1.AddToScheme(Scheme))
	must(Scheme.SetVersionPriority(activityv1alpha1.SchemeGroupVersion))
}

func addEventTypes(s *runtime.Scheme, gv schema.GroupVersion, ev, list runtime.Object) error {
	internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
	s.AddKnownTypes(gv, ev, list)
	s.AddKnownTypes(internal, &core.Event{}, &core.EventList{})
	if gv.Group != "" {
		metav1.AddToGroupVersion(s, gv)
	}
	// Field selectors arrive in the group's vocabulary; storage matches
	// them in one canonical vocabulary (the core/v1 labels).
	return s.AddFieldLabelConversionFunc(gv.WithKind("Event"), func(label, value string) (string, string, error) {
		return fields.ConvertFieldLabel(gv.Group, label, value)
	})
}

// addConversions registers the conversions between the internal Event and
// each group's external one: a copy for core/v1, kube's mapping
// (internal/kubeevents/conversion) for events.k8s.io/v1.
func addConversions(s *runtime.Scheme) error {
	funcs := []struct {
		in, out any
		fn      func(in, out any)
	}{
		{(*core.Event)(nil), (*corev1.Event)(nil), func(in, out any) { in.(*core.Event).V1().DeepCopyInto(out.(*corev1.Event)) }},
		{(*corev1.Event)(nil), (*core.Event)(nil), func(in, out any) { in.(*corev1.Event).DeepCopyInto(out.(*core.Event).V1()) }},
		{(*core.EventList)(nil), (*corev1.EventList)(nil), func(in, out any) { in.(*core.EventList).V1().DeepCopyInto(out.(*corev1.EventList)) }},
		{(*corev1.EventList)(nil), (*core.EventList)(nil), func(in, out any) { in.(*corev1.EventList).DeepCopyInto(out.(*core.EventList).V1()) }},
		{(*core.Event)(nil), (*eventsv1.Event)(nil), func(in, out any) {
			*out.(*eventsv1.Event) = *conversion.ToEventsV1(in.(*core.Event).V1())
		}},
		{(*eventsv1.Event)(nil), (*core.Event)(nil), func(in, out any) {
			*out.(*core.Event).V1() = *conversion.FromEventsV1(in.(*eventsv1.Event))
		}},
		{(*core.EventList)(nil), (*eventsv1.EventList)(nil), func(in, out any) {
			*out.(*eventsv1.EventList) = *conversion.ToEventsV1List(in.(*core.EventList).V1())
		}},
		{(*eventsv1.EventList)(nil), (*core.EventList)(nil), func(in, out any) {
			*out.(*core.EventList).V1() = *conversion.FromEventsV1List(in.(*eventsv1.EventList))
		}},
	}
	for _, f := range funcs {
		fn := f.fn
		if err := s.AddConversionFunc(f.in, f.out, func(in, out any, _ apiconversion.Scope) error {
			fn(in, out)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func must(err error) {
	if err != nil {
		panic("BUG: build scheme: " + err.Error())
	}
}
