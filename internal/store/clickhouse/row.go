package clickhouse

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Row is one event state as stored. The indexed fields are extracted in Go at
// write time (18.16 has no JSON functions worth using) and removed from Rest,
// the protobuf of everything else, so no byte is stored twice. Related is the
// exception: it stays in Rest too, because a nil and an empty reference must
// round-trip differently and related events are rare.
type Row struct {
	ScopeType, ScopeName string
	Namespace, Name, UID string
	Seq                  uint64
	Op                   uint8
	// LastTime is the event's last observation (see LastObserved), the time
	// every window and ordering uses; LastNanos keeps its sub-second part.
	LastTime  time.Time
	LastNanos uint32

	InvolvedKind, InvolvedNamespace, InvolvedName, InvolvedUID     string
	InvolvedAPIVersion, InvolvedResourceVersion, InvolvedFieldPath string

	Reason, Message, Type                      string
	SourceComponent, SourceHost                string
	ReportingController, ReportingInstance     string
	Action                                     string
	RelatedKind, RelatedNamespace, RelatedName string
	Count                                      int32
	Rest                                       []byte
	// Lease is the etcd lease of a state written through the etcd front.
	Lease int64
}

// LastObserved returns when ev was last seen, the way kubectl's LAST SEEN
// column picks it: series.lastObservedTime, else lastTimestamp, else eventTime,
// else firstTimestamp, else creationTimestamp, else fallback (the time the
// state was stored).
func LastObserved(ev *corev1.Event, fallback time.Time) time.Time {
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		return ev.Series.LastObservedTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	case !ev.CreationTimestamp.IsZero():
		return ev.CreationTimestamp.Time
	}
	return fallback
}

// minTime and maxTime bound ClickHouse's DateTime (an unsigned 32-bit count of
// seconds). Times outside are clamped for indexing only; the exact time stays
// in Rest.
var (
	minTime = time.Unix(1, 0).UTC()
	maxTime = time.Unix(1<<32-1, 0).UTC()
)

// EncodeRow turns a record into a row. stored is the time JetStream stored the
// message, used when the event carries no time of its own.
func EncodeRow(r *eventlog.Record, stored time.Time) (Row, error) {
	ev := r.Event
	last := LastObserved(ev, stored).UTC()
	if last.Before(minTime) {
		last = minTime
	} else if last.After(maxTime) {
		last = maxTime
	}
	row := Row{
		ScopeType: r.Key.Scope.Type, ScopeName: r.Key.Scope.Name,
		Namespace: ev.Namespace, Name: ev.Name, UID: string(ev.UID),
		Seq: r.Seq, Op: uint8(r.Op),
		LastTime: last.Truncate(time.Second), LastNanos: uint32(last.Nanosecond()),

		InvolvedKind: ev.InvolvedObject.Kind, InvolvedNamespace: ev.InvolvedObject.Namespace,
		InvolvedName: ev.InvolvedObject.Name, InvolvedUID: string(ev.InvolvedObject.UID),
		InvolvedAPIVersion: ev.InvolvedObject.APIVersion, InvolvedResourceVersion: ev.InvolvedObject.ResourceVersion,
		InvolvedFieldPath: ev.InvolvedObject.FieldPath,

		Reason: ev.Reason, Message: ev.Message, Type: ev.Type,
		SourceComponent: ev.Source.Component, SourceHost: ev.Source.Host,
		ReportingController: ev.ReportingController, ReportingInstance: ev.ReportingInstance,
		Action: ev.Action, Count: ev.Count, Lease: r.Lease,
	}
	if ev.Related != nil {
		row.RelatedKind, row.RelatedNamespace, row.RelatedName = ev.Related.Kind, ev.Related.Namespace, ev.Related.Name
	}
	rest := *ev // shallow copy; only top-level strings and structs are cleared
	rest.Namespace, rest.Name, rest.UID, rest.ResourceVersion = "", "", "", ""
	rest.InvolvedObject = corev1.ObjectReference{}
	rest.Reason, rest.Message, rest.Type = "", "", ""
	rest.Source = corev1.EventSource{}
	rest.ReportingController, rest.ReportingInstance, rest.Action = "", "", ""
	rest.Count = 0
	b, err := rest.Marshal()
	if err != nil {
		return Row{}, fmt.Errorf("encode row for %s: %w", eventlog.Subject(r.Key), err)
	}
	row.Rest = b
	return row, nil
}

// DecodeRow rebuilds the record a row was made from. The event's
// resourceVersion is the row's sequence.
func DecodeRow(row *Row) (*eventlog.Record, error) {
	ev := &corev1.Event{}
	if err := ev.Unmarshal(row.Rest); err != nil {
		return nil, fmt.Errorf("decode row %s/%s seq %d: %w", row.Namespace, row.Name, row.Seq, err)
	}
	ev.Namespace, ev.Name, ev.UID = row.Namespace, row.Name, types.UID(row.UID)
	ev.ResourceVersion = fmt.Sprint(row.Seq)
	ev.InvolvedObject = corev1.ObjectReference{
		Kind: row.InvolvedKind, Namespace: row.InvolvedNamespace, Name: row.InvolvedName,
		UID: types.UID(row.InvolvedUID), APIVersion: row.InvolvedAPIVersion,
		ResourceVersion: row.InvolvedResourceVersion, FieldPath: row.InvolvedFieldPath,
	}
	ev.Reason, ev.Message, ev.Type = row.Reason, row.Message, row.Type
	ev.Source = corev1.EventSource{Component: row.SourceComponent, Host: row.SourceHost}
	ev.ReportingController, ev.ReportingInstance, ev.Action = row.ReportingController, row.ReportingInstance, row.Action
	ev.Count = row.Count
	return &eventlog.Record{
		Key: eventlog.Key{Scope: scope.Scope{Type: row.ScopeType, Name: row.ScopeName}, Namespace: row.Namespace, Name: row.Name},
		Op:  eventlog.Op(row.Op), Event: ev, Seq: row.Seq, Lease: row.Lease,
	}, nil
}
