package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Names of the JetStream objects audit records live in.
const (
	// StreamName holds every audit record until the indexer has it in
	// ClickHouse (and for --audit.retention after).
	StreamName = "AUDIT"
	// SubjectPrefix is the first token of audit subjects:
	// audit.<scopeType>.<scopeName>, tokens encoded as EVENTS subjects are.
	// One subject per scope: records have no per-object history to keep in
	// order, and a scope's records are what a tenant reads.
	SubjectPrefix = "audit"
	// WatermarkKey is the indexer's committed watermark in
	// eventlog.StateBucket: every AUDIT sequence at or below it is in
	// ClickHouse.
	WatermarkKey = "audit.watermark"
)

// Record is one audit record: one stage of one request, in one scope.
type Record struct {
	Scope scope.Scope
	Event *auditv1.Event
	// Seq is the record's AUDIT sequence; 0 until stored.
	Seq uint64
	// Stored is when JetStream stored it.
	Stored time.Time
}

// Subject is the subject of sc's records.
func Subject(sc scope.Scope) string {
	return SubjectPrefix + "." + eventlog.EncodeToken(sc.Type) + "." + eventlog.EncodeToken(sc.Name)
}

// FilterSubject matches every record of sc, or of every scope when nil.
func FilterSubject(sc *scope.Scope) string {
	if sc == nil {
		return SubjectPrefix + ".>"
	}
	return Subject(*sc)
}

// MsgID is the record's idempotency key: kube-apiserver resends a whole
// batch after a failed or lost answer, and a resent record must store
// nothing. A request has one record per stage, all with its auditID; the
// scope keeps two tenants' clusters apart should their ids collide.
func MsgID(sc scope.Scope, auditID string, stage auditv1.Stage) string {
	return "audit/" + sc.Type + "/" + sc.Name + "/" + auditID + "/" + string(stage)
}

// Encode builds the message of r: the audit event as JSON, the form
// kube-apiserver sent and the API serves.
func Encode(r *Record) (*nats.Msg, error) {
	b, err := json.Marshal(r.Event)
	if err != nil {
		return nil, fmt.Errorf("encode audit record %s: %w", r.Event.AuditID, err)
	}
	m := nats.NewMsg(Subject(r.Scope))
	m.Data = b
	return m, nil
}

// Decode reads a record back from its message.
func Decode(subject string, data []byte, seq uint64, stored time.Time) (*Record, error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return nil, fmt.Errorf("parse subject %q: want %s.<scopeType>.<scopeName>", subject, SubjectPrefix)
	}
	typ, name, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(name, ".") {
		return nil, fmt.Errorf("parse subject %q: want %s.<scopeType>.<scopeName>", subject, SubjectPrefix)
	}
	var sc scope.Scope
	var err error
	if sc.Type, err = eventlog.DecodeToken(typ); err != nil {
		return nil, fmt.Errorf("parse subject %q: %w", subject, err)
	}
	if sc.Name, err = eventlog.DecodeToken(name); err != nil {
		return nil, fmt.Errorf("parse subject %q: %w", subject, err)
	}
	ev := &auditv1.Event{}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode audit record on %s (seq %d): %w", subject, seq, err)
	}
	return &Record{Scope: sc, Event: ev, Seq: seq, Stored: stored}, nil
}

// Row is the record's ClickHouse row: the fields queries filter on,
// extracted here (ClickHouse 18.16 has no JSON functions), and the whole
// record as JSON.
func (r *Record) Row() (chstore.AuditRow, error) {
	ev := r.Event
	body, err := json.Marshal(ev)
	if err != nil {
		return chstore.AuditRow{}, fmt.Errorf("encode audit record %s: %w", ev.AuditID, err)
	}
	req := chstore.ClampTime(ev.RequestReceivedTimestamp.Time)
	row := chstore.AuditRow{
		ScopeType: r.Scope.Type, ScopeName: r.Scope.Name,
		AuditID: string(ev.AuditID), Stage: string(ev.Stage), Seq: r.Seq,
		RequestTime: req.Truncate(time.Second), RequestNanos: uint32(req.Nanosecond()),
		StageTime: chstore.ClampTime(ev.StageTimestamp.Time).Truncate(time.Second),
		Level:     string(ev.Level), Verb: ev.Verb, User: ev.User.Username, UserGroups: ev.User.Groups,
		SourceIP: strings.Join(ev.SourceIPs, ","), UserAgent: ev.UserAgent, Body: body,
	}
	if row.UserGroups == nil {
		row.UserGroups = []string{}
	}
	if o := ev.ObjectRef; o != nil {
		row.Namespace, row.APIGroup, row.APIVersion = o.Namespace, o.APIGroup, o.APIVersion
		row.Resource, row.Subresource, row.Name = o.Resource, o.Subresource, o.Name
	}
	if ev.ResponseStatus != nil {
		row.Code = ev.ResponseStatus.Code
	}
	return row, nil
}

// Publisher appends audit records to the AUDIT stream. It is safe for
// concurrent use.
type Publisher struct{ js jetstream.JetStream }

// NewPublisher returns a publisher on js. Call Ensure first.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// PublishAll stores recs under their message ids (MsgID) with one wait for
// all acknowledgements, setting each one's Seq. On error some may be stored
// and others not; a retry of them all stores nothing twice.
func (p *Publisher) PublishAll(ctx context.Context, recs []*Record, ids []string) error {
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m, err := Encode(r)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	seqs, err := eventlog.PublishMsgs(ctx, p.js, StreamName, msgs, ids)
	for i, seq := range seqs {
		recs[i].Seq = seq
	}
	return err
}
