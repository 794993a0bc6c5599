package watchtail

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// Source serves the EVENTS log's tails and ranges to one API server: from
// its Hub whenever the hub holds what is asked for, else from JetStream,
// through a consumer of the caller's own. It is safe for concurrent use.
type Source struct {
	// r reads the states the hub cannot serve; states decodes them as
	// States of the watch's own.
	r      *eventlog.Reader
	states *eventlog.StreamReader[State]
	hub    *Hub
}

// NewSource returns the source of r's stream, with a Hub that reads while
// ctx lasts and it is used.
func NewSource(ctx context.Context, r *eventlog.Reader, log *slog.Logger) *Source {
	return &Source{r: r, states: eventlog.WithDecoder(r, decodeOwn), hub: NewHub(ctx, r, log)}
}

// decodeOwn decodes a state that a tail reads for one watch alone.
func decodeOwn(subject string, hdr nats.Header, data []byte, seq uint64) (State, error) {
	rec, err := eventlog.DecodeMsg(subject, hdr, data, seq)
	return State{Record: rec}, err
}

// Tail returns a feed of the states on subjects matching filter (as
// eventlog.FilterSubject makes it) from sequence from on, until ctx ends or
// the feed is stopped. It is the hub's when the hub can serve it: it is
// reading, and its ring still holds from (as it does for watches from a
// list's resourceVersion, which trails the log by the writer's batch wait).
// Otherwise, and while the hub is starting, the feed has a JetStream
// consumer of its own; only that can fail here.
func (s *Source) Tail(ctx context.Context, filter string, from uint64) (Feed[State], error) {
	if t, ok := s.hub.Tail(ctx, filter, from); ok {
		return t, nil
	}
	t, err := s.states.Tail(ctx, filter, from)
	if err != nil {
		return nil, err // not a Feed holding a nil tail
	}
	return t, nil
}

// Range returns, in order, the states on subjects matching filter with
// sequences in (after, upto]: what a consistent read adds to what the
// index has committed. It waits up to rangeWait for the hub to read up to
// upto and takes them from its ring, or else reads them from JetStream,
// refusing with eventlog.ErrRangeTooLong to read more than maxRangeStates
// there. The records must not be modified: some are the hub's.
func (s *Source) Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error) {
	if recs, ok := s.hub.Range(ctx, filter, after, upto, rangeWait); ok {
		return recs, nil
	}
	return s.r.Range(ctx, filter, after, upto, maxRangeStates)
}

// rangeWait is how long a consistent read waits for the hub to read up to
// the log's end before it reads the states from JetStream itself; the
// hub, once reading, is normally within milliseconds of the end.
const rangeWait = 500 * time.Millisecond

// maxRangeStates bounds the states a consistent read takes from JetStream
// when the hub does not hold them. More pending than that means the writer
// is far behind (ClickHouse slow or down): the read then waits briefly for
// the watermark and otherwise answers 504, never a stale list.
const maxRangeStates = 50000
