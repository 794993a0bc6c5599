package eventlog

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Op says what a message did to its event.
type Op uint8

// The operations. Their numeric values are stored in ClickHouse; never
// renumber them.
const (
	OpCreate Op = 1
	OpUpdate Op = 2
	OpDelete Op = 3
	// OpExpire ends an event's life in a Kubernetes view because the etcd
	// lease it was written with ran out (kube-apiserver's --event-ttl), not
	// because a client deleted it: watches and lists treat it as a delete,
	// history (EventQuery) keeps the event's last state. Its body is that
	// state.
	OpExpire Op = 4
)

// Gone reports whether op ends the event's life: after it, the event is
// absent from lists, gets and the etcd front's key space.
func (op Op) Gone() bool { return op == OpDelete || op == OpExpire }

// String returns the header spelling of op.
func (op Op) String() string {
	switch op {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("Op(%d)", uint8(op))
}

// ParseOp reads the header spelling of an Op.
func ParseOp(s string) (Op, error) {
	switch s {
	case "create":
		return OpCreate, nil
	case "update":
		return OpUpdate, nil
	case "delete":
		return OpDelete, nil
	case "expire":
		return OpExpire, nil
	}
	return 0, fmt.Errorf("unknown operation %q; allowed: create, update, delete, expire", s)
}

// Message headers. The body is the core/v1 Event in Kubernetes' generated
// protobuf encoding (not the runtime.Unknown envelope): compact and several
// times cheaper to decode than JSON, which matters on the writer's hot path.
const (
	HeaderOp     = "Eventpipe-Op"
	HeaderCodec  = "Eventpipe-Codec"
	codecProtoV1 = "corev1.Event/pb"
	// HeaderPrev carries Record.Prev, base64 of the same protobuf encoding.
	HeaderPrev = "Eventpipe-Prev"
	// HeaderLease carries Record.Lease in decimal, when not zero.
	HeaderLease = "Eventpipe-Lease"
)

// Record is one state of one event, as published and as read back.
type Record struct {
	Key Key
	Op  Op
	// Event is the whole object. Its ResourceVersion is not part of the
	// message: a state's resourceVersion is its stream sequence, known only
	// once it is stored. Decode sets it from Seq.
	Event *corev1.Event
	// Seq is the stream sequence; zero before publishing.
	Seq uint64
	// Prev, on an update that changed what selectors see of the event (its
	// labels or a field-selector field), is the state the update replaced:
	// a watch with a selector needs it to tell whether the event entered or
	// left its selection, and then sends it as the DELETED object, as
	// kube-apiserver does. Nil otherwise (most updates only count), and
	// from publishers that do not read the current state first (the
	// exporter and the webhook receiver). The etcd front sets it on every
	// update: an etcd watch event carries the previous value of every
	// change but a create. Its ResourceVersion is not stored.
	Prev *corev1.Event
	// Lease is the etcd lease the state was written with through the etcd
	// front (kube-apiserver's --event-ttl), 0 for none: when it runs out
	// the front ends the event with an OpExpire state.
	Lease int64
}

// EncodeMsg builds the message for r (without a Nats-Msg-Id: the publisher
// adds it).
func EncodeMsg(r *Record) (*nats.Msg, error) {
	if r.Event == nil {
		return nil, fmt.Errorf("encode record: no event")
	}
	if r.Key.Name == "" {
		return nil, fmt.Errorf("encode record: event has no name")
	}
	if r.Event.Namespace != r.Key.Namespace || r.Event.Name != r.Key.Name {
		return nil, fmt.Errorf("encode record: event %s/%s does not match key %s/%s",
			r.Event.Namespace, r.Event.Name, r.Key.Namespace, r.Key.Name)
	}
	if err := r.Key.Scope.Validate(); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	if _, err := ParseOp(r.Op.String()); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	// The resourceVersion is the sequence; do not store a stale copy. Nor
	// kind and apiVersion: the record is the core/v1 Event by definition,
	// and list items are served without them.
	body, err := marshalState(r.Event)
	if err != nil {
		return nil, fmt.Errorf("encode record: marshal event: %w", err)
	}
	m := nats.NewMsg(Subject(r.Key))
	m.Header.Set(HeaderOp, r.Op.String())
	m.Header.Set(HeaderCodec, codecProtoV1)
	if r.Prev != nil {
		if r.Op != OpUpdate {
			return nil, fmt.Errorf("encode record: only an update replaces a state, not a %s", r.Op)
		}
		prev, err := marshalState(r.Prev)
		if err != nil {
			return nil, fmt.Errorf("encode record: marshal previous state: %w", err)
		}
		m.Header.Set(HeaderPrev, base64.StdEncoding.EncodeToString(prev))
	}
	if r.Lease != 0 {
		m.Header.Set(HeaderLease, strconv.FormatInt(r.Lease, 10))
	}
	m.Data = body
	return m, nil
}

// marshalState encodes ev without its resourceVersion, kind and
// apiVersion.
func marshalState(ev *corev1.Event) ([]byte, error) {
	rv, tm := ev.ResourceVersion, ev.TypeMeta
	ev.ResourceVersion, ev.TypeMeta = "", metav1.TypeMeta{}
	body, err := ev.Marshal()
	ev.ResourceVersion, ev.TypeMeta = rv, tm
	return body, err
}

// DecodeMsg reads a record from a stored message's subject, headers, body
// and sequence. Any error means the message is not a valid event state and
// belongs in the dead-letter stream.
func DecodeMsg(subject string, hdr nats.Header, data []byte, seq uint64) (*Record, error) {
	m, err := ReadRaw(subject, hdr, data, seq)
	if err != nil {
		return nil, err
	}
	return m.Decode()
}

// Raw is a stored state with its headers read and its body not yet
// decoded: a reader that keeps many states (the shared watch tail, in
// internal/watchtail) holds them this way and decodes each when it needs
// the record.
type Raw struct {
	Subject string
	Op      Op
	// Prev is HeaderPrev's value, "" for none.
	Prev  string
	Lease int64
	Data  []byte
	Seq   uint64
}

// ReadRaw is the DecodeFunc of Raw states. A message whose headers are not
// a state's is refused, as DecodeMsg refuses it; its body is not looked at.
func ReadRaw(subject string, hdr nats.Header, data []byte, seq uint64) (*Raw, error) {
	op, err := ParseOp(hdr.Get(HeaderOp))
	if err != nil {
		return nil, fmt.Errorf("header %s: %w", HeaderOp, err)
	}
	if c := hdr.Get(HeaderCodec); c != codecProtoV1 {
		return nil, fmt.Errorf("header %s: unknown codec %q; allowed: %s", HeaderCodec, c, codecProtoV1)
	}
	m := &Raw{Subject: subject, Op: op, Prev: hdr.Get(HeaderPrev), Data: data, Seq: seq}
	if l := hdr.Get(HeaderLease); l != "" {
		if m.Lease, err = strconv.ParseInt(l, 10, 64); err != nil || m.Lease <= 0 {
			return nil, fmt.Errorf("header %s: %q is not a lease ID; allowed: a positive integer", HeaderLease, l)
		}
	}
	return m, nil
}

// Decode returns the record m holds, as DecodeMsg does; every call returns
// a new one.
func (m *Raw) Decode() (*Record, error) {
	key, err := ParseSubject(m.Subject)
	if err != nil {
		return nil, err
	}
	ev := &corev1.Event{}
	if err := ev.Unmarshal(m.Data); err != nil {
		return nil, fmt.Errorf("unmarshal event: %w", err)
	}
	if ev.Namespace != key.Namespace || ev.Name != key.Name {
		return nil, fmt.Errorf("event %s/%s does not match subject %s", ev.Namespace, ev.Name, m.Subject)
	}
	if m.Seq > 0 {
		ev.ResourceVersion = fmt.Sprint(m.Seq)
	}
	rec := &Record{Key: key, Op: m.Op, Event: ev, Seq: m.Seq, Lease: m.Lease}
	if m.Prev != "" {
		raw, err := base64.StdEncoding.DecodeString(m.Prev)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", HeaderPrev, err)
		}
		rec.Prev = &corev1.Event{}
		if err := rec.Prev.Unmarshal(raw); err != nil {
			return nil, fmt.Errorf("header %s: unmarshal event: %w", HeaderPrev, err)
		}
	}
	return rec, nil
}
