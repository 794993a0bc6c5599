package exporter

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Metadata the exporter adds to every exported Event. Everything else is the
// source object as the source cluster served it, less its resourceVersion
// (in eventpipe a state's resourceVersion is its stream sequence) and its
// managedFields (the source's field ownership means nothing here).
const (
	// LabelSourceCluster names the cluster an Event was exported from
	// (--exporter.cluster-name), so that it can be selected by label.
	LabelSourceCluster = "eventpipe.io/source-cluster"
	// AnnotationSourceResourceVersion is the Event's resourceVersion in the
	// source cluster at the state that was exported.
	AnnotationSourceResourceVersion = "eventpipe.io/source-resource-version"
)

// change is one state seen in the source cluster.
type change struct {
	op eventlog.Op
	ev *corev1.Event
}

// opForListed decides whether a listed Event (whose history the exporter
// did not see) is a create or an update: an Event that has been observed
// more than once has been updated at least once.
func opForListed(ev *corev1.Event) eventlog.Op {
	if ev.Count > 1 || ev.Series != nil {
		return eventlog.OpUpdate
	}
	return eventlog.OpCreate
}

// isExpiry reports whether a DELETED state is the source expiring the event
// rather than someone deleting it. kube-apiserver stores every Event under
// an etcd lease of --event-ttl that each write renews, and etcd deletes the
// key when the lease lapses; the watch delivers that as DELETED like any
// delete, with the same object. Only the timing tells them apart: an expiry
// comes at least ttl after the event's last write (kube-apiserver may reuse
// a lease for up to a minute, which only makes it later). A little slack
// (a tenth of ttl, at most a minute) covers clocks that disagree; an
// explicit delete of an event that old is taken for its expiry, which at
// worst keeps an event the source was about to drop anyway.
func isExpiry(ev *corev1.Event, ttl time.Duration, now time.Time) bool {
	if ttl <= 0 {
		return false
	}
	last := lastWrite(ev)
	if last.IsZero() {
		return false
	}
	return now.Sub(last) >= ttl-min(time.Minute, ttl/10)
}

// lastWrite is when ev was last written in the source: the newest of its
// managedFields times (every write through the API records one), else the
// newest of the times the event itself carries.
func lastWrite(ev *corev1.Event) time.Time {
	var last time.Time
	for _, mf := range ev.ManagedFields {
		if mf.Time != nil && mf.Time.After(last) {
			last = mf.Time.Time
		}
	}
	if !last.IsZero() {
		return last
	}
	for _, t := range []time.Time{ev.CreationTimestamp.Time, ev.LastTimestamp.Time, ev.EventTime.Time} {
		if t.After(last) {
			last = t
		}
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(last) {
		last = ev.Series.LastObservedTime.Time
	}
	return last
}

// MsgID is the Nats-Msg-Id of one exported state. It depends only on the
// source object's identity and version, so every replica, every relist and
// every restart derives the same id for the same state, and JetStream
// stores it once. A delete has its own id: kube-apiserver gives the DELETED
// watch event the resourceVersion of the deletion, but an id that says
// "delete" can never collide with a state that was written.
func MsgID(cluster, uid, resourceVersion string, op eventlog.Op) string {
	id := "export/" + cluster + "/" + uid + "/" + resourceVersion
	if op == eventlog.OpDelete {
		id += "/delete"
	}
	return id
}

// exportedRecord builds the record for c: the event with the exporter's
// label and annotation, in scope sc. It does not modify c.ev.
func exportedRecord(cluster string, sc scope.Scope, c change) *eventlog.Record {
	ev := c.ev.DeepCopy()
	rv := ev.ResourceVersion
	ev.ResourceVersion = ""
	ev.ManagedFields = nil
	ev.TypeMeta.Kind, ev.TypeMeta.APIVersion = "", ""
	if ev.Labels == nil {
		ev.Labels = map[string]string{}
	}
	ev.Labels[LabelSourceCluster] = cluster
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[AnnotationSourceResourceVersion] = rv
	return &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: c.op, Event: ev}
}

// ParseResourceVersion reads a source resourceVersion as a number.
// Kubernetes calls resourceVersions opaque, but every etcd-backed
// kube-apiserver hands out etcd revisions, which only grow; the exporter
// relies on that to tell what changed since its resume point, and refuses a
// source whose versions are not numbers rather than guess.
func ParseResourceVersion(rv string) (uint64, error) {
	if rv == "" {
		return 0, fmt.Errorf("resourceVersion is empty")
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not an unsigned decimal number (an etcd revision)", rv)
	}
	if strconv.FormatUint(n, 10) != rv {
		// "007" would compare equal to "7" but is a different string to
		// the source; only the canonical spelling is accepted.
		return 0, fmt.Errorf("resourceVersion %q is not in canonical decimal form", rv)
	}
	return n, nil
}

// sourceVersion returns the source resourceVersion an exported state
// carries, or false when it carries none (it was not written by an
// exporter).
func sourceVersion(ev *corev1.Event) (uint64, bool) {
	v, ok := ev.Annotations[AnnotationSourceResourceVersion]
	if !ok {
		return 0, false
	}
	n, err := ParseResourceVersion(v)
	return n, err == nil
}
