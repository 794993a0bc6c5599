package eventlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/retry"
)

// HeaderWriteID marks a conditional publish (one with an expected last
// sequence) with a random id of its own, so that when its answer was lost
// (a timeout while a clustered stream elects a leader) and the retry finds
// the subject moved, the publisher can tell its own earlier store from
// someone else's write.
const HeaderWriteID = "Eventpipe-Write-Id"

// publishRetryFor bounds how long Publish retries a publish that failed
// for a transient reason (no stream leader, a timeout) before it gives up
// and returns the error: long enough for a JetStream cluster to elect a
// new stream leader after losing one (a few seconds), short enough that an
// API request still answers within its timeout.
const publishRetryFor = 15 * time.Second

// ErrConflict is returned by Publish when an expected previous sequence
// (an update's resourceVersion precondition) does not match the stream.
var ErrConflict = errors.New("event was modified concurrently")

// IsWrongLastSequence reports whether err is JetStream refusing a publish or
// a KV write because the subject's last sequence is not the one expected:
// someone else wrote in between. The server answers with one of two codes
// (the second for atomic batches), and a KV Create reports the same refusal
// as ErrKeyExists.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Publisher appends event states to the EVENTS stream. It is safe for
// concurrent use.
type Publisher struct {
	js jetstream.JetStream
	g  groupCommit
}

// NewPublisher returns a publisher on js. Call Ensure first.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js}
}

// PublishOptions refine one publish.
type PublishOptions struct {
	// MsgID makes the publish idempotent within the stream's duplicate
	// window: a second publish with the same id is acknowledged with the
	// first one's sequence and stores nothing. Writers that retry (ingest,
	// the exporter) need it.
	MsgID string
	// ExpectLastSeq, when set, requires that the newest state on the event's
	// subject has this sequence (0 means none yet). It makes updates safe
	// against lost updates, like etcd's compare-and-swap, and it already
	// keeps a resent publish from being stored twice: the copy finds its own
	// first store on the subject and fails as a conflict.
	ExpectLastSeq *uint64
}

// Publish stores r and returns its sequence (the new resourceVersion). A
// duplicate publish with the same MsgID returns the original sequence.
//
// A publish that fails for a transient reason (IsRetryable: no stream
// leader during an election, a timeout) is retried for up to
// publishRetryFor, or until ctx ends, so that a leader change of a
// clustered stream delays writes instead of failing them. A retry stores
// nothing twice: a MsgID publish is deduplicated by JetStream, and a
// conditional one (ExpectLastSeq) cannot be stored twice; when its retry
// finds the subject moved, Publish reads the subject's newest state and,
// if that is its own earlier attempt (HeaderWriteID), answers with it
// instead of a conflict.
func (p *Publisher) Publish(ctx context.Context, r *Record, o PublishOptions) (uint64, error) {
	if o.MsgID == "" && o.ExpectLastSeq == nil {
		// Without either, a resent publish would store the state twice.
		return 0, fmt.Errorf("publish %s: a message id or an expected last sequence is required", Subject(r.Key))
	}
	m, err := EncodeMsg(r)
	if err != nil {
		return 0, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(StreamName)}
	if o.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(o.MsgID))
	}
	if o.ExpectLastSeq != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*o.ExpectLastSeq))
		if o.MsgID == "" {
			m.Header.Set(HeaderWriteID, newWriteID())
		}
	}
	start, backoff := time.Now(), 50*time.Millisecond
	for attempt := 1; ; attempt++ {
		ack, err := p.g.publish(ctx, p.js, m, opts)
		if err == nil {
			r.Seq = ack.Sequence
			return ack.Sequence, nil
		}
		if IsWrongLastSequence(err) {
			if attempt > 1 {
				if seq, ok := p.storedEarlier(ctx, m); ok {
					r.Seq = seq
					return seq, nil
				}
			}
			return 0, fmt.Errorf("publish %s: %w", m.Subject, ErrConflict)
		}
		if !IsRetryable(err) || ctx.Err() != nil || time.Since(start)+backoff > publishRetryFor {
			return 0, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		if !retry.Sleep(ctx, backoff) {
			return 0, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// storedEarlier reports whether the newest state on m's subject is m
// itself, stored by an earlier attempt whose answer was lost, and its
// sequence. It answers false when it cannot tell, or when another write
// already followed m's (then the caller's conflict is what it reports;
// rare: it takes a second write to the same event within the retry).
func (p *Publisher) storedEarlier(ctx context.Context, m *nats.Msg) (uint64, bool) {
	id := m.Header.Get(HeaderWriteID)
	if id == "" {
		return 0, false
	}
	s, err := p.js.Stream(ctx, StreamName)
	if err != nil {
		return 0, false
	}
	last, err := s.GetLastMsgForSubject(ctx, m.Subject)
	if err != nil || last.Header.Get(HeaderWriteID) != id {
		return 0, false
	}
	return last.Sequence, true
}

// newWriteID returns 16 random bytes in hex.
func newWriteID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PublishAll stores recs without waiting for each acknowledgement before
// sending the next: one round trip for the lot instead of one per record,
// which is what a batch ingest spends most of its JetStream time on. ids
// are the records' message ids, as PublishOptions.MsgID. The records'
// subjects must be distinct: if an earlier state of an event failed while a
// later one was stored, a retry would store the earlier one last. Callers
// publish several states of one event in successive calls, in order.
//
// It returns when every record is stored, each with its Seq set, or at the
// first failure, when some may be stored and others not; a retry of them
// all stores nothing twice.
func (p *Publisher) PublishAll(ctx context.Context, recs []*Record, ids []string) error {
	if len(ids) != len(recs) {
		return fmt.Errorf("publish: %d records but %d message ids", len(recs), len(ids))
	}
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m, err := EncodeMsg(r)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	seqs, err := PublishMsgs(ctx, p.js, StreamName, msgs, ids)
	for i, seq := range seqs {
		recs[i].Seq = seq
	}
	return err
}

// PublishMsgs stores msgs in stream with one wait for all their
// acknowledgements, each under its message id (required: a retry of the
// lot then stores nothing twice). It returns the sequences of the messages
// stored before the first failure, in order, and that failure.
func PublishMsgs(ctx context.Context, js jetstream.JetStream, stream string, msgs []*nats.Msg, ids []string) ([]uint64, error) {
	if len(ids) != len(msgs) {
		return nil, fmt.Errorf("publish: %d messages but %d message ids", len(msgs), len(ids))
	}
	futs := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		if ids[i] == "" {
			return nil, fmt.Errorf("publish %s: message id is required", m.Subject)
		}
		var err error
		futs[i], err = js.PublishMsgAsync(m, jetstream.WithMsgID(ids[i]), jetstream.WithExpectStream(stream))
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
	seqs := make([]uint64, 0, len(msgs))
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			seqs = append(seqs, ack.Sequence)
		case err := <-f.Err():
			return seqs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return seqs, fmt.Errorf("publish: %w", ctx.Err())
		}
	}
	return seqs, nil
}
