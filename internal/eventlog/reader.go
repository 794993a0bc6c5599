package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DecodeFunc turns one stream message into a typed state; DecodeMsg is the
// EVENTS stream's.
type DecodeFunc[T any] func(subject string, hdr nats.Header, data []byte, seq uint64) (T, error)

// StreamReader reads typed states back from one stream whose messages are
// states of keyed objects, one subject per object (EVENTS, and the
// ACTIVITIES stream of internal/activity): the newest state on a subject
// (read-your-writes without waiting for ClickHouse) and ordered tails for
// watches. It is safe for concurrent use.
type StreamReader[T any] struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	decode DecodeFunc[T]
}

// Reader reads states back from the EVENTS stream.
type Reader = StreamReader[*Record]

// Tail is an ordered feed of EVENTS states; see StreamReader.Tail.
type Tail = StreamTail[*Record]

// NewReader opens the EVENTS stream for reading. Call Ensure first.
func NewReader(ctx context.Context, js jetstream.JetStream) (*Reader, error) {
	return OpenStreamReader(ctx, js, StreamName, DecodeMsg)
}

// OpenStreamReader opens stream name for reading, decoding with decode.
func OpenStreamReader[T any](ctx context.Context, js jetstream.JetStream, name string, decode DecodeFunc[T]) (*StreamReader[T], error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", name, err)
	}
	return &StreamReader[T]{js: js, stream: s, name: name, decode: decode}, nil
}

// WithDecoder returns a reader of r's stream that decodes its messages with
// decode instead: the shared watch tail reads EVENTS as Raw states.
func WithDecoder[U, T any](r *StreamReader[T], decode DecodeFunc[U]) *StreamReader[U] {
	return &StreamReader[U]{js: r.js, stream: r.stream, name: r.name, decode: decode}
}

// Latest returns the newest state stored on subject (which may hold
// wildcards, e.g. to find a name in any scope), or the zero T (nil) when
// the stream holds none: never written, or trimmed after commit, in which
// case ClickHouse has it.
func (r *StreamReader[T]) Latest(ctx context.Context, subject string) (T, error) {
	var zero T
	m, err := r.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return zero, nil
	}
	if err != nil {
		return zero, fmt.Errorf("read latest state on %s: %w", subject, err)
	}
	st, err := r.decode(m.Subject, m.Header, m.Data, m.Sequence)
	if err != nil {
		return zero, fmt.Errorf("read latest state on %s (seq %d): %w", subject, m.Sequence, err)
	}
	return st, nil
}

// EachLatest calls f with the newest state of every subject matching
// filter that the stream still holds, in stream order, and returns once it
// has seen all that were there when it began (later ones may be seen too).
// Messages that are not valid states are skipped. An error from f stops it
// and is returned.
func (r *StreamReader[T]) EachLatest(ctx context.Context, filter string, f func(T) error) error {
	return r.each(ctx, jetstream.ConsumerConfig{FilterSubject: filter, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}, 0,
		func(st T, _ uint64) (bool, error) { return false, f(st) })
}

// ErrRangeTooLong refuses a Range that would read more states than its
// caller allows.
var ErrRangeTooLong = errors.New("too many states to read from the log")

// Range returns, in order, the states on subjects matching filter whose
// sequences are after after and at most upto. It reads them straight from
// JetStream (the shared watch tail's ring, in internal/watchtail, is
// cheaper when it holds them), and refuses
// with ErrRangeTooLong, before reading any, when more than maxStates
// messages on those subjects follow after.
func (r *StreamReader[T]) Range(ctx context.Context, filter string, after, upto uint64, maxStates uint64) ([]T, error) {
	if upto <= after {
		return nil, nil
	}
	var out []T
	err := r.each(ctx, jetstream.ConsumerConfig{FilterSubject: filter, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}, maxStates,
		func(st T, seq uint64) (bool, error) {
			if seq > upto {
				return true, nil
			}
			out = append(out, st)
			return seq == upto, nil
		})
	return out, err
}

// each delivers the messages an ephemeral consumer with cfg's filter and
// delivery policy has pending when it is made, decoded, to f, until f says
// stop or returns an error. With maxPending > 0 it refuses (ErrRangeTooLong)
// to read more than that many.
func (r *StreamReader[T]) each(ctx context.Context, cfg jetstream.ConsumerConfig, maxPending uint64, f func(st T, seq uint64) (stop bool, err error)) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	// Ephemeral: the server removes it if this reader goes away.
	cfg.InactiveThreshold = time.Minute
	cfg.MemoryStorage = true
	cons, err := r.js.CreateConsumer(ctx, r.name, cfg)
	if err != nil {
		return fmt.Errorf("read states on %s: %w", cfg.FilterSubject, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.js.DeleteConsumer(dctx, r.name, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	if maxPending > 0 && pending > maxPending {
		return fmt.Errorf("read states on %s: %d pending, at most %d: %w", cfg.FilterSubject, pending, maxPending, ErrRangeTooLong)
	}
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 1024)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read states on %s: %w", cfg.FilterSubject, err)
		}
		n := uint64(0)
		stop := false
		for m := range batch.Messages() {
			n++
			if stop {
				continue // drain the batch
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			st, err := r.decode(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
			if err != nil {
				continue
			}
			if stop, err = f(st, md.Sequence.Stream); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read states on %s: %w", cfg.FilterSubject, err)
		}
		if stop {
			return nil
		}
		if n == 0 {
			return fmt.Errorf("read states on %s: %d states not delivered", cfg.FilterSubject, pending)
		}
		pending -= min(n, pending)
	}
	return nil
}

// Bounds returns the first sequence the stream still holds and the last one
// written. A stream with nothing in it reports first = last+1.
func (r *StreamReader[T]) Bounds(ctx context.Context) (first, last uint64, err error) {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read stream %s bounds: %w", r.name, err)
	}
	first, last = info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		first = last + 1
	}
	return first, last, nil
}

// Oldest returns the first sequence the stream still holds and when it was
// stored: what the log still covers. A stream that never trimmed anything
// has first 1 (or is empty) and covers every state ever written.
func (r *StreamReader[T]) Oldest(ctx context.Context) (first uint64, stored time.Time, err error) {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read stream %s bounds: %w", r.name, err)
	}
	return info.State.FirstSeq, info.State.FirstTime, nil
}

// Tail delivers, in order, every state on subjects matching filter from
// sequence from on, until ctx ends or Stop is called. Messages that are not
// valid states are skipped (the stream's writer dead-letters them). The
// returned channel is closed when the tail ends; Err then says why (nil
// when stopped).
func (r *StreamReader[T]) Tail(ctx context.Context, filter string, from uint64) (*StreamTail[T], error) {
	cons, err := r.js.OrderedConsumer(ctx, r.name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, fmt.Errorf("tail %s from %d: %w", filter, from, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, fmt.Errorf("tail %s from %d: %w", filter, from, err)
	}
	t := &StreamTail[T]{C: make(chan T, 64), it: it, cons: cons, stream: r.stream, done: make(chan struct{})}
	go t.run(ctx, r.decode)
	return t, nil
}

// StreamTail is an ordered feed of states; see StreamReader.Tail.
type StreamTail[T any] struct {
	// C carries the states. It is closed when the tail ends.
	C       chan T
	it      jetstream.MessagesContext
	cons    jetstream.Consumer
	stream  jetstream.Stream
	stopped atomic.Bool
	once    sync.Once
	// done is closed by Stop, so that a tail whose reader went away does
	// not wait on C for its context to end.
	done chan struct{}
	// err is set before C is closed.
	err error
}

// States returns C; StreamTail is a watchtail.Feed.
func (t *StreamTail[T]) States() <-chan T { return t.C }

// Stop ends the tail; C is closed soon after. It may be called more than
// once, from any goroutine.
func (t *StreamTail[T]) Stop() {
	t.once.Do(func() {
		t.stopped.Store(true)
		close(t.done)
		t.it.Stop()
	})
}

// Caught returns a sequence up to which every state on the tail's subjects
// has come through C, given that the caller has taken the states up to
// processed: the stream's last sequence, when the tail's consumer has
// nothing pending and has delivered nothing the caller has not taken. ok is
// false when that cannot be told now (states on their way, or JetStream
// not answering). It lets a watch of a quiet namespace send bookmarks that
// advance with the stream, as kube-apiserver's do, so that a client
// resuming from one is not sent to relist once the stream has trimmed past
// the last state of its own.
func (t *StreamTail[T]) Caught(ctx context.Context, processed uint64) (seq uint64, ok bool) {
	// The stream's end first: a consumer with nothing pending afterwards
	// has delivered everything on its subjects up to that end.
	si, err := t.stream.Info(ctx)
	if err != nil {
		return 0, false
	}
	ci, err := t.cons.Info(ctx)
	if err != nil || ci.NumPending > 0 || ci.Delivered.Stream > processed {
		return 0, false
	}
	return si.State.LastSeq, true
}

// Err reports why the tail ended, once C is closed; nil after Stop or ctx end.
func (t *StreamTail[T]) Err() error { return t.err }

func (t *StreamTail[T]) run(ctx context.Context, decode DecodeFunc[T]) {
	defer close(t.C)
	stop := context.AfterFunc(ctx, t.Stop)
	defer stop()
	for {
		m, err := t.it.Next()
		if err != nil {
			if !t.stopped.Load() && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				t.err = err
			}
			return
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		st, err := decode(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
		if err != nil {
			continue
		}
		select {
		case t.C <- st:
		case <-t.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// WatermarkKey is the key of the writer's committed watermark in StateBucket.
const WatermarkKey = "writer.watermark"

// Watermark follows the writer's committed watermark through the state
// bucket, for processes other than the writer (API servers). It is safe for
// concurrent use.
type Watermark struct {
	v  atomic.Uint64
	mu sync.Mutex
	ch chan struct{} // closed and replaced on every advance; guarded by mu
}

// WatchWatermark starts following the writer's watermark until ctx ends.
func WatchWatermark(ctx context.Context, js jetstream.JetStream) (*Watermark, error) {
	return WatchWatermarkKey(ctx, js, WatermarkKey)
}

// WatchWatermarkKey starts following the watermark stored under key in
// StateBucket until ctx ends. Other committers (the activity indexer) keep
// their own watermark there, under their own key.
func WatchWatermarkKey(ctx context.Context, js jetstream.JetStream, key string) (*Watermark, error) {
	kv, err := js.KeyValue(ctx, StateBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", StateBucket, err)
	}
	w, err := kv.Watch(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", StateBucket, key, err)
	}
	wm := NewWatermark()
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil {
				continue // end of initial values
			}
			if v, err := strconv.ParseUint(string(e.Value()), 10, 64); err == nil {
				wm.Advance(v)
			}
		}
	}()
	return wm, nil
}

// NewWatermark returns a watermark advanced only by calls to Advance (the
// in-process writer in dev mode and tests).
func NewWatermark() *Watermark { return &Watermark{ch: make(chan struct{})} }

// Advance moves the watermark forward to seq; it never moves back.
func (w *Watermark) Advance(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.v.Load() {
		return
	}
	w.v.Store(seq)
	close(w.ch)
	w.ch = make(chan struct{})
}

// Load returns the current watermark.
func (w *Watermark) Load() uint64 { return w.v.Load() }

// WaitFor blocks until the watermark reaches seq or ctx ends.
func (w *Watermark) WaitFor(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		ch := w.ch
		w.mu.Unlock()
		if w.v.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
