package eventlog

import (
	"encoding/base64"
	"fmt"

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
)

// String returns the header spelling of op.
func (op Op) String() string {
	switch op {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
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
	}
	return 0, fmt.Errorf("unknown operation %q; allowed: create, update, delete", s)
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
	// exporter and the webhook receiver). Its ResourceVersion is not stored.
	Prev *corev1.Event
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
	op, prev, err := readHeaders(hdr)
	if err != nil {
		return nil, err
	}
	return decodeState(subject, op, data, prev, seq)
}

// readHeaders reads a state's operation and its HeaderPrev value ("" for
// none), and checks its codec.
func readHeaders(hdr nats.Header) (Op, string, error) {
	op, err := ParseOp(hdr.Get(HeaderOp))
	if err != nil {
		return 0, "", fmt.Errorf("header %s: %w", HeaderOp, err)
	}
	if c := hdr.Get(HeaderCodec); c != codecProtoV1 {
		return 0, "", fmt.Errorf("header %s: unknown codec %q; allowed: %s", HeaderCodec, c, codecProtoV1)
	}
	return op, hdr.Get(HeaderPrev), nil
}

// Raw is a stored state with its headers read and its body not yet
// decoded: a reader that keeps many states (the shared watch tail, in
// internal/watchtail) holds them this way and decodes each when it needs
// the record.
type Raw struct {
	Subject string
	Op      Op
	// Prev is HeaderPrev's value, "" for none.
	Prev string
	Data []byte
	Seq  uint64
}

// ReadRaw is the DecodeFunc of Raw states. A message whose headers are not
// a state's is refused, as DecodeMsg refuses it; its body is not looked at.
func ReadRaw(subject string, hdr nats.Header, data []byte, seq uint64) (*Raw, error) {
	op, prev, err := readHeaders(hdr)
	if err != nil {
		return nil, err
	}
	return &Raw{Subject: subject, Op: op, Prev: prev, Data: data, Seq: seq}, nil
}

// Decode returns the record m holds, as DecodeMsg does; every call returns
// a new one.
func (m *Raw) Decode() (*Record, error) {
	return decodeState(m.Subject, m.Op, m.Data, m.Prev, m.Seq)
}

// decodeState is DecodeMsg once the headers are read.
func decodeState(subject string, op Op, data []byte, prev string, seq uint64) (*Record, error) {
	key, err := ParseSubject(subject)
	if err != nil {
		return nil, err
	}
	ev := &corev1.Event{}
	if err := ev.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("unmarshal event: %w", err)
	}
	if ev.Namespace != key.Namespace || ev.Name != key.Name {
		return nil, fmt.Errorf("event %s/%s does not match subject %s", ev.Namespace, ev.Name, subject)
	}
	if seq > 0 {
		ev.ResourceVersion = fmt.Sprint(seq)
	}
	rec := &Record{Key: key, Op: op, Event: ev, Seq: seq}
	if prev != "" {
		raw, err := base64.StdEncoding.DecodeString(prev)
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
