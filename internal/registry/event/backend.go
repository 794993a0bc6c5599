package event

import (
	"context"
	"time"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/listquery"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// Log is what the storage needs from the JetStream log.
type Log interface {
	// Publish appends a state and returns its sequence.
	Publish(ctx context.Context, r *eventlog.Record, o eventlog.PublishOptions) (uint64, error)
	// Latest returns the newest state on subject, or nil if the log holds none.
	Latest(ctx context.Context, subject string) (*eventlog.Record, error)
	// Bounds returns the first sequence still held and the last written.
	Bounds(ctx context.Context) (first, last uint64, err error)
	// Tail delivers states on subjects matching filter, in order, from seq.
	Tail(ctx context.Context, filter string, from uint64) (watchtail.Feed[watchtail.State], error)
	// Range returns, in order, the states on subjects matching filter with
	// sequences in (after, upto]: what a consistent read adds to the index.
	// It fails with eventlog.ErrRangeTooLong rather than read more than a
	// request should; the records it returns must not be modified.
	Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error)
}

// Index is what the storage needs from the index of committed states,
// ClickHouse (see ClickHouseIndex).
type Index interface {
	// Get returns the latest state of one event, nil when absent or deleted.
	Get(ctx context.Context, sc *scope.Scope, namespace, name string) (*eventlog.Record, error)
	// List returns a page of latest states, in key order (see keyLess).
	List(ctx context.Context, q ListQuery) ([]*eventlog.Record, error)
	// CountLatest counts the events whose latest states f selects.
	CountLatest(ctx context.Context, f LatestFilter) (uint64, error)
}

// LatestFilter selects events by their latest state as of a sequence,
// deleted events left out.
type LatestFilter struct {
	// Scope limits the read to one tenant; nil reads every scope.
	Scope *scope.Scope
	// Namespace, when not nil, limits the read to one namespace.
	Namespace *string
	// Since keeps events last observed at or after it (see inWindow).
	Since time.Time
	// AtSeq answers as of this sequence: later states are not seen.
	AtSeq uint64
}

// ListQuery selects a page of events by their latest state.
type ListQuery struct {
	LatestFilter
	// Conds narrow the latest states; they are ANDed. An index may leave
	// out those it cannot apply: the registry matches every state it is
	// given against the whole selector again.
	Conds []listquery.Cond
	// After starts the page after this key.
	After *eventlog.Key
	// Limit bounds the page; 0 means no bound.
	Limit int
}

// Watermark is the writer's committed watermark: every state at or below it
// is in the Index.
type Watermark interface {
	Load() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// LogReaderPublisher joins the log's reader and publisher, and the shared
// watch tail, into a Log.
type LogReaderPublisher struct {
	*eventlog.Reader
	*eventlog.Publisher
	// Watches serves Tail and Range.
	Watches *watchtail.Source
}

// Tail implements Log.
func (l LogReaderPublisher) Tail(ctx context.Context, filter string, from uint64) (watchtail.Feed[watchtail.State], error) {
	return l.Watches.Tail(ctx, filter, from)
}

// Range implements Log.
func (l LogReaderPublisher) Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error) {
	return l.Watches.Range(ctx, filter, after, upto)
}

var _ Log = LogReaderPublisher{}

// logTimeout bounds one request's call to the log. While NATS is
// unreachable the client buffers and waits for a reconnect; without a bound
// a request would hang until the client gives up. With it the caller gets a
// 503 with Retry-After and may try again.
const logTimeout = 5 * time.Second

// boundedLog puts logTimeout on every short call to a Log. Tails are
// long-lived and keep the caller's context.
type boundedLog struct{ Log }

func (b boundedLog) Publish(ctx context.Context, r *eventlog.Record, o eventlog.PublishOptions) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	return b.Log.Publish(ctx, r, o)
}

func (b boundedLog) Latest(ctx context.Context, subject string) (*eventlog.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	return b.Log.Latest(ctx, subject)
}

func (b boundedLog) Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	return b.Log.Range(ctx, filter, after, upto)
}

func (b boundedLog) Bounds(ctx context.Context) (first, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	return b.Log.Bounds(ctx)
}
