package conversion

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Type metadata stamped on converted objects. kube-apiserver's scheme sets the
// target kind on an object it converts to an external version, so a single
// converted Event (and a converted list) names its own group and kind.
var (
	coreEventType       = metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Event"}
	coreEventListType   = metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "EventList"}
	eventsEventType     = metav1.TypeMeta{APIVersion: eventsv1.SchemeGroupVersion.String(), Kind: "Event"}
	eventsEventListType = metav1.TypeMeta{APIVersion: eventsv1.SchemeGroupVersion.String(), Kind: "EventList"}
)

// ToEventsV1 renders a stored core/v1 Event as an events.k8s.io/v1 Event.
//
// Fields with the same name and meaning are carried over as they are; the
// rest are renamed the way kube-apiserver renames them:
//
//	involvedObject  -> regarding
//	message         -> note
//	source          -> deprecatedSource
//	firstTimestamp  -> deprecatedFirstTimestamp
//	lastTimestamp   -> deprecatedLastTimestamp
//	count           -> deprecatedCount
//
// The result shares no memory with in (kube-apiserver's generated code
// aliases pointers such as series and related; we copy instead because stored
// records may be read concurrently). The result's TypeMeta is
// events.k8s.io/v1 Event whatever in's TypeMeta was. A nil in gives nil.
func ToEventsV1(in *corev1.Event) *eventsv1.Event {
	if in == nil {
		return nil
	}
	out := &eventsv1.Event{}
	toEventsV1(in, out)
	out.TypeMeta = eventsEventType
	return out
}

// FromEventsV1 turns an events.k8s.io/v1 Event into the core/v1 Event that
// eventpipe stores. It is the inverse of ToEventsV1: see there for the field
// mapping. The result shares no memory with in, and its TypeMeta is core/v1
// Event. A nil in gives nil.
func FromEventsV1(in *eventsv1.Event) *corev1.Event {
	if in == nil {
		return nil
	}
	out := &corev1.Event{}
	fromEventsV1(in, out)
	out.TypeMeta = coreEventType
	return out
}

// ToEventsV1List renders a core/v1 EventList as an events.k8s.io/v1
// EventList. List metadata (resourceVersion, continue, remainingItemCount) is
// carried over unchanged.
//
// Items carry no TypeMeta, as in kube-apiserver's list responses: there the
// items are converted field by field and never get a kind of their own. Nil
// and empty Items are kept apart, as kube's generated conversion does; a
// caller that wants kube's `"items": []` for an empty result passes an empty,
// non-nil slice. A nil in gives nil.
func ToEventsV1List(in *corev1.EventList) *eventsv1.EventList {
	if in == nil {
		return nil
	}
	out := &eventsv1.EventList{TypeMeta: eventsEventListType}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = convertItems(in.Items, toEventsV1)
	return out
}

// FromEventsV1List turns an events.k8s.io/v1 EventList into a core/v1
// EventList, with the same rules for list metadata, item TypeMeta and nil
// Items as ToEventsV1List. A nil in gives nil.
func FromEventsV1List(in *eventsv1.EventList) *corev1.EventList {
	if in == nil {
		return nil
	}
	out := &corev1.EventList{TypeMeta: coreEventListType}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = convertItems(in.Items, fromEventsV1)
	return out
}

// convertItems converts a list's items one by one with convert. A nil slice
// stays nil and an empty one stays empty, because kube's generated conversion
// keeps them apart and clients see the difference as `null` versus `[]`.
func convertItems[In, Out any](in []In, convert func(*In, *Out)) []Out {
	if in == nil {
		return nil
	}
	out := make([]Out, len(in))
	for i := range in {
		convert(&in[i], &out[i])
	}
	return out
}

// toEventsV1 copies every field of in into out, leaving out's TypeMeta alone.
// It works on a deep copy of in so that out shares no memory with it (see
// ToEventsV1).
func toEventsV1(in *corev1.Event, out *eventsv1.Event) {
	in = in.DeepCopy()
	out.ObjectMeta = in.ObjectMeta

	// Same name on both sides.
	out.EventTime = in.EventTime
	out.Reason = in.Reason
	out.Type = in.Type
	out.Action = in.Action
	out.Related = in.Related
	out.ReportingController = in.ReportingController
	out.ReportingInstance = in.ReportingInstance
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{
			Count:            in.Series.Count,
			LastObservedTime: in.Series.LastObservedTime,
		}
	}

	// Renamed: events.k8s.io/v1 keeps the legacy fields under deprecated*
	// names so that old writers' data survives a read through the new group.
	out.Regarding = in.InvolvedObject
	out.Note = in.Message
	out.DeprecatedSource = in.Source
	out.DeprecatedFirstTimestamp = in.FirstTimestamp
	out.DeprecatedLastTimestamp = in.LastTimestamp
	out.DeprecatedCount = in.Count
}

// fromEventsV1 is the inverse of toEventsV1, and likewise leaves out sharing
// no memory with in.
func fromEventsV1(in *eventsv1.Event, out *corev1.Event) {
	in = in.DeepCopy()
	out.ObjectMeta = in.ObjectMeta

	out.EventTime = in.EventTime
	out.Reason = in.Reason
	out.Type = in.Type
	out.Action = in.Action
	out.Related = in.Related
	out.ReportingController = in.ReportingController
	out.ReportingInstance = in.ReportingInstance
	if in.Series != nil {
		out.Series = &corev1.EventSeries{
			Count:            in.Series.Count,
			LastObservedTime: in.Series.LastObservedTime,
		}
	}

	out.InvolvedObject = in.Regarding
	out.Message = in.Note
	out.Source = in.DeprecatedSource
	out.FirstTimestamp = in.DeprecatedFirstTimestamp
	out.LastTimestamp = in.DeprecatedLastTimestamp
	out.Count = in.DeprecatedCount
}
