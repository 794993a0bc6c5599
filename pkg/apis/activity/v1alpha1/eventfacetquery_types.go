package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &EventFacetQuery{})
		return nil
	})
}

// EventFacetQuery summarises stored Kubernetes Events over a time range: the
// distinct values of chosen fields with how many events carry each, and a
// time histogram a timeline can draw directly. Counts are of distinct events
// in their latest state, not of stored rows. It is create-only and nothing
// is persisted.
//
// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type EventFacetQuery struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata. The name is only echoed back.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the query.
	Spec EventFacetQuerySpec `json:"spec"`
	// Status is the answer, filled in by the server.
	// +optional
	Status EventFacetQueryStatus `json:"status,omitempty"`
}

// EventFacetQuerySpec is what to summarise.
type EventFacetQuerySpec struct {
	// StartTime begins the window (inclusive): RFC 3339 with any offset, e.g.
	// "2026-02-11T00:00:00Z", or relative, e.g. "now-7d". Default "now-7d".
	// Capped by the caller's tier query window (60 days by default).
	// +optional
	StartTime string `json:"startTime,omitempty"`
	// EndTime ends the window (exclusive), in the same forms, e.g. "now".
	// Default "now".
	// +optional
	EndTime string `json:"endTime,omitempty"`
	// Namespace limits the summary to one namespace, e.g. "prod".
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// FieldSelector filters events as EventQuery's does, e.g. "type=Warning"
	// or "reason in (BackOff,FailedMount)".
	// +optional
	FieldSelector string `json:"fieldSelector,omitempty"`
	// Facets are the fields to count values of, at most 8. Default: all of
	// regarding.kind, regarding.namespace, namespace, reason, type,
	// source.component, related.kind, related.namespace, with limit 10.
	// +optional
	// +listType=atomic
	Facets []FacetSpec `json:"facets,omitempty"`
	// Histogram sets how events are counted over time.
	// +optional
	Histogram *HistogramSpec `json:"histogram,omitempty"`
}

// FacetSpec names one field to count the values of.
type FacetSpec struct {
	// Field is one of regarding.kind, regarding.namespace, namespace, reason,
	// type, source.component, related.kind, related.namespace.
	Field string `json:"field"`
	// Limit is how many of the most frequent values to return: 1 to 100,
	// default 10.
	// +optional
	Limit int32 `json:"limit,omitempty"`
}

// HistogramSpec sets the histogram's bucket size.
type HistogramSpec struct {
	// BucketSize is each bucket's width: a number and a unit s, m, h, d or w,
	// e.g. "5m", "1h", "1d". Empty picks a size automatically (at most 200
	// buckets over the window). The window may hold at most 1000 buckets.
	// +optional
	BucketSize string `json:"bucketSize,omitempty"`
}

// EventFacetQueryStatus is the answer to an EventFacetQuery.
type EventFacetQueryStatus struct {
	// EffectiveStartTime is the absolute start of the window searched.
	// +optional
	EffectiveStartTime *metav1.Time `json:"effectiveStartTime,omitempty"`
	// EffectiveEndTime is the absolute (exclusive) end of the window.
	// +optional
	EffectiveEndTime *metav1.Time `json:"effectiveEndTime,omitempty"`
	// Total is the number of distinct events that match.
	// +optional
	Total int64 `json:"total,omitempty"`
	// Facets hold, per requested field, its most frequent values.
	// +optional
	// +listType=atomic
	Facets []FacetResult `json:"facets,omitempty"`
	// Histogram counts the matching events per time bucket.
	// +optional
	Histogram *HistogramResult `json:"histogram,omitempty"`
	// ResourceVersion is the log position the counts reflect: the writer's
	// committed watermark when the query was answered (see
	// EventQueryStatus.ResourceVersion).
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// FacetResult is the values of one field.
type FacetResult struct {
	// Field is the facet's field, as requested.
	Field string `json:"field"`
	// Values are the most frequent non-empty values, most frequent first.
	// +optional
	// +listType=atomic
	Values []FacetValue `json:"values,omitempty"`
}

// FacetValue is one value and how many distinct events carry it.
type FacetValue struct {
	// Value is the field's value.
	Value string `json:"value"`
	// Count is the number of distinct matching events with this value.
	Count int64 `json:"count"`
}

// HistogramResult is events per time bucket.
type HistogramResult struct {
	// BucketSize is the width of each bucket, e.g. "1h".
	BucketSize string `json:"bucketSize"`
	// Buckets cover the window from its start without gaps, empty buckets
	// included (count 0); the last one may be cut short by the window's end.
	// +optional
	// +listType=atomic
	Buckets []HistogramBucket `json:"buckets,omitempty"`
}

// HistogramBucket is one bucket of a histogram.
type HistogramBucket struct {
	// StartTime is where the bucket begins (inclusive).
	StartTime metav1.Time `json:"startTime"`
	// Count is the number of distinct matching events last observed in the
	// bucket.
	Count int64 `json:"count"`
}
