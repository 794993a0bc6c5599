package v1alpha1

import (
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &EventQuery{})
		return nil
	})
}

// EventQuery searches the stored history of Kubernetes Events (up to the
// caller's tier query window, 60 days by default) over an absolute or
// relative time range. It is create-only and nothing is persisted: the
// answer to `kubectl create -f query.yaml -o yaml` carries the matching
// events in status.results, newest first, each event once in its latest
// state.
//
// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type EventQuery struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata. The name is only echoed back; nothing is
	// stored under it.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the query.
	Spec EventQuerySpec `json:"spec"`
	// Status is the answer, filled in by the server.
	// +optional
	Status EventQueryStatus `json:"status,omitempty"`
}

// EventQuerySpec is what to search for.
type EventQuerySpec struct {
	// StartTime is where the window begins (inclusive). Either an RFC 3339
	// time with any offset, e.g. "2026-02-11T00:00:00Z" or
	// "2026-02-11T09:30:00+01:00", or a time relative to now: "now",
	// "now-30m", "now-2h", "now-7d", "now-1w" (units s, m, h, d, w). It must
	// lie within the caller's tier query window counted back from now
	// (60 days by default) and not in the future.
	StartTime string `json:"startTime"`
	// EndTime is where the window ends (exclusive), in the same forms as
	// startTime, e.g. "2026-02-18T00:00:00Z" or "now". It must be after
	// startTime and not in the future.
	EndTime string `json:"endTime"`
	// Namespace limits the search to one namespace, e.g. "prod". Empty
	// searches every namespace the caller may read.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// FieldSelector filters events by their latest state. Terms are
	// separated by commas and ANDed. Fields: the labels of core/v1 Events
	// (involvedObject.kind, involvedObject.namespace, involvedObject.name,
	// involvedObject.uid, involvedObject.apiVersion,
	// involvedObject.resourceVersion, involvedObject.fieldPath, reason, type,
	// source, reportingComponent, metadata.name, metadata.namespace,
	// metadata.uid), their events.k8s.io/v1 spellings (regarding.*,
	// reportingController) and related.kind, related.namespace,
	// related.name. Operators: =, ==, != and the set forms "in (a,b)" and
	// "notin (a,b)". Examples: "type=Warning",
	// "regarding.kind=Pod,reason in (BackOff,FailedMount)",
	// "involvedObject.namespace!=kube-system". Escape a literal comma,
	// equals sign, parenthesis or backslash with a backslash.
	// +optional
	FieldSelector string `json:"fieldSelector,omitempty"`
	// Limit is the most events one page returns: 1 to 1000, default 100.
	// +optional
	Limit int32 `json:"limit,omitempty"`
	// Continue fetches the next page: copy status.continue of the previous
	// answer here and keep every other field unchanged. A token is valid for
	// one hour, only for the query and the caller it was issued to.
	// +optional
	Continue string `json:"continue,omitempty"`
}

// EventQueryStatus is the answer to an EventQuery.
type EventQueryStatus struct {
	// Results are the matching events.k8s.io/v1 Events, newest first by
	// their last observation, each event once, in its latest state.
	// +optional
	// +listType=atomic
	Results []eventsv1.Event `json:"results,omitempty"`
	// Continue, when set, fetches the next page: send the same query again
	// with spec.continue set to it. Empty on the last page.
	// +optional
	Continue string `json:"continue,omitempty"`
	// EffectiveStartTime is the absolute start of the window the server
	// searched (relative times resolved). Every page of one query uses the
	// window of its first page, so relative times do not slide.
	// +optional
	EffectiveStartTime *metav1.Time `json:"effectiveStartTime,omitempty"`
	// EffectiveEndTime is the absolute (exclusive) end of the window.
	// +optional
	EffectiveEndTime *metav1.Time `json:"effectiveEndTime,omitempty"`
	// ResourceVersion is the log position the answer reflects: every event
	// state at or below it that the window selects, and none above. It is
	// the writer's committed watermark when the first page was asked (every
	// page of one query answers at it). History is read from the index
	// alone, so a write of the last moments shows up here within the
	// writer's batch wait; the Events API's lists show it at once.
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
}
