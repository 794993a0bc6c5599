package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Names of the JetStream objects the activity pipeline owns.
const (
	// StreamName holds every Activity state; its sequence is the
	// Activity's resourceVersion.
	StreamName = "ACTIVITIES"
	// SubjectPrefix is the first token of activity subjects:
	// activities.<scopeType>.<scopeName>.<namespace>.<name>, tokens encoded
	// as the EVENTS subjects are. One subject per source event, so the
	// updates of an event land on its Activity's subject.
	SubjectPrefix = "activities"
	// DeadLetterStream holds evaluation errors, with the policy and rule.
	DeadLetterStream = "ACTIVITIES_DLQ"
	// DeadLetterSubject is DeadLetterStream's one subject.
	DeadLetterSubject = "dlq.activities"
	// PolicyBucket is the key-value bucket of ActivityPolicies.
	PolicyBucket = "ACTIVITY_POLICIES"
	// WatermarkKey is the indexer's committed watermark in
	// eventlog.StateBucket: every ACTIVITIES sequence at or below it is in
	// ClickHouse.
	WatermarkKey = "activity.watermark"
	// ProgressKey is the processor's progress in eventlog.StateBucket: every
	// EVENTS sequence at or below it has its Activity state published.
	ProgressKey = "activity.processed"
	// AuditProgressKey is the processor's progress on AUDIT: every audit
	// sequence at or below it has its Activity state published (or was
	// dropped by the policies).
	AuditProgressKey = "activity.audit.processed"
)

// Headers of activity and dead-letter messages.
const (
	HeaderSourceSeq = "Eventpipe-Source-Seq"
	// HeaderNew marks the first state of an Activity (its event's create),
	// so a watch can say ADDED rather than MODIFIED.
	HeaderNew    = "Eventpipe-New"
	HeaderPolicy = "Eventpipe-Policy"
	HeaderRule   = "Eventpipe-Rule"
	HeaderReason = "Eventpipe-Dlq-Reason"
)

// StreamConfig describes the ACTIVITIES stream.
type StreamConfig struct {
	// Retention is how long an indexed Activity state stays in the stream:
	// the window in which a watch can resume by resourceVersion.
	Retention time.Duration
	// MaxBytes bounds the stream; full, it refuses new states.
	MaxBytes int64
	// DuplicateWindow is how long a message id is remembered.
	DuplicateWindow time.Duration
	Replicas        int
}

// DefaultStreamConfig returns the documented defaults.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{Retention: time.Hour, MaxBytes: 4 << 30, DuplicateWindow: 10 * time.Minute, Replicas: 1}
}

// Ensure creates or updates the ACTIVITIES stream, its dead-letter stream
// and the policy bucket. The EVENTS stream and state bucket must exist
// (eventlog.Ensure).
func Ensure(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	if _, err := eventlog.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "eventpipe: every state of every Activity; sequence = resourceVersion",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// As for EVENTS: refuse rather than drop states not yet indexed; the
		// indexer trims what it has committed.
		Discard:     jetstream.DiscardNew,
		MaxBytes:    c.MaxBytes,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
		AllowDirect: true,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	if _, err := eventlog.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "eventpipe: activity policy evaluation errors, with policy, rule and reason",
		Subjects:    []string{DeadLetterSubject},
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      14 * 24 * time.Hour,
		MaxBytes:    256 << 20,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", DeadLetterStream, err)
	}
	if _, err := eventlog.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      PolicyBucket,
		Description: "eventpipe: ActivityPolicies by name",
		// A few revisions per key, so a watch resuming shortly after a
		// change still sees it.
		History:  8,
		Storage:  jetstream.FileStorage,
		Replicas: c.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure key-value bucket %s: %w", PolicyBucket, err)
	}
	return nil
}

// Key locates one Activity: the scope, namespace and name of its event.
type Key = eventlog.Key

// Subject is the subject of the Activity at k.
func Subject(k Key) string {
	return SubjectPrefix + "." + eventlog.EncodeToken(k.Scope.Type) + "." + eventlog.EncodeToken(k.Scope.Name) + "." +
		eventlog.EncodeToken(k.Namespace) + "." + eventlog.EncodeToken(k.Name)
}

// FilterSubject matches every Activity of sc (all scopes when nil), in
// *namespace when not nil.
func FilterSubject(sc *scope.Scope, namespace *string) string {
	return SubjectPrefix + strings.TrimPrefix(eventlog.FilterSubject(sc, namespace), eventlog.SubjectPrefix)
}

// ParseSubject reads the key back from an activity subject.
func ParseSubject(subj string) (Key, error) {
	rest, ok := strings.CutPrefix(subj, SubjectPrefix+".")
	if !ok {
		return Key{}, fmt.Errorf("parse subject %q: want %s.<scopeType>.<scopeName>.<namespace>.<name>", subj, SubjectPrefix)
	}
	return eventlog.ParseSubject(eventlog.SubjectPrefix + "." + rest)
}

// State is one Activity state read from the stream.
type State struct {
	Key       Key
	Activity  *activityv1alpha1.Activity
	Seq       uint64
	SourceSeq uint64
	// New is set on an Activity's first state.
	New bool
}

// encode builds the message of an Activity state. The body is JSON: small,
// and what the API serves anyway.
func encode(k Key, a *activityv1alpha1.Activity, sourceSeq uint64, isNew bool) (*nats.Msg, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode activity %s/%s: %w", k.Namespace, k.Name, err)
	}
	m := nats.NewMsg(Subject(k))
	m.Data = b
	m.Header.Set(HeaderSourceSeq, strconv.FormatUint(sourceSeq, 10))
	if isNew {
		m.Header.Set(HeaderNew, "true")
	}
	return m, nil
}

// Decode reads an Activity state; seq becomes its resourceVersion.
func Decode(subject string, h nats.Header, data []byte, seq uint64) (*State, error) {
	k, err := ParseSubject(subject)
	if err != nil {
		return nil, err
	}
	a := &activityv1alpha1.Activity{}
	if err := json.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("decode activity on %s (seq %d): %w", subject, seq, err)
	}
	if a.Namespace != k.Namespace || a.Name != k.Name {
		return nil, fmt.Errorf("decode activity on %s (seq %d): body names %s/%s", subject, seq, a.Namespace, a.Name)
	}
	a.ResourceVersion = strconv.FormatUint(seq, 10)
	src, _ := strconv.ParseUint(h.Get(HeaderSourceSeq), 10, 64)
	return &State{Key: k, Activity: a, Seq: seq, SourceSeq: src, New: h.Get(HeaderNew) == "true"}, nil
}

// Row turns a state into its ClickHouse row.
func (s *State) Row() (chstore.ActivityRow, error) {
	a := s.Activity
	body, err := json.Marshal(a)
	if err != nil {
		return chstore.ActivityRow{}, err
	}
	last := chstore.ClampTime(a.Spec.LastSeen.Time)
	return chstore.ActivityRow{
		ScopeType: s.Key.Scope.Type, ScopeName: s.Key.Scope.Name, Namespace: s.Key.Namespace, Name: s.Key.Name,
		Seq: s.Seq, SourceSeq: s.SourceSeq, LastTime: last.Truncate(time.Second), LastNanos: uint32(last.Nanosecond()),
		ResourceKind: a.Spec.Resource.Kind, ResourceName: a.Spec.Resource.Name, ActorName: a.Spec.Actor.Name,
		Reason: a.Spec.Reason, Type: a.Spec.Type, Summary: a.Spec.Summary, Body: body,
	}, nil
}

// FromRow reads an Activity back from its row.
func FromRow(r *chstore.ActivityRow) (*activityv1alpha1.Activity, error) {
	a := &activityv1alpha1.Activity{}
	if err := json.Unmarshal(r.Body, a); err != nil {
		return nil, fmt.Errorf("decode activity %s/%s seq %d: %w", r.Namespace, r.Name, r.Seq, err)
	}
	a.ResourceVersion = strconv.FormatUint(r.Seq, 10)
	return a, nil
}

// Build makes the Activity of an event state from its outcome.
func Build(rec *eventlog.Record, o Outcome, stored time.Time) *activityv1alpha1.Activity {
	ev := rec.Event
	first := ev.FirstTimestamp.Time
	if first.IsZero() {
		first = ev.EventTime.Time
	}
	if first.IsZero() {
		first = ev.CreationTimestamp.Time
	}
	last := chstore.LastObserved(ev, stored)
	if first.IsZero() {
		first = last
	}
	a := &activityv1alpha1.Activity{
		TypeMeta: metav1.TypeMeta{APIVersion: activityv1alpha1.SchemeGroupVersion.String(), Kind: "Activity"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rec.Key.Namespace, Name: rec.Key.Name, UID: ev.UID,
			CreationTimestamp: metav1.NewTime(first.Truncate(time.Second)),
			Labels:            ev.Labels,
		},
		Spec: activityv1alpha1.ActivitySpec{
			Summary: o.Summary, Links: o.Links,
			Resource: activityv1alpha1.ActivityResource{
				APIGroup: groupOf(ev.InvolvedObject.APIVersion), APIVersion: ev.InvolvedObject.APIVersion,
				Kind: ev.InvolvedObject.Kind, Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name,
				UID: string(ev.InvolvedObject.UID),
			},
			Actor:  activityv1alpha1.ActivityActor{Type: "controller", Name: actorOf(ev)},
			Reason: ev.Reason, Type: ev.Type, Count: countOf(ev),
			FirstSeen: metav1.NewTime(first), LastSeen: metav1.NewTime(last),
			Origin: activityv1alpha1.ActivityOrigin{EventName: ev.Name, EventUID: string(ev.UID),
				EventResourceVersion: strconv.FormatUint(rec.Seq, 10), Policy: o.Policy, Rule: o.Rule},
			Tenant: activityv1alpha1.ActivityTenant{Type: rec.Key.Scope.Type, Name: rec.Key.Scope.Name},
		},
	}
	if a.Spec.Actor.Name == "" {
		a.Spec.Actor.Type = ""
	}
	return a
}
