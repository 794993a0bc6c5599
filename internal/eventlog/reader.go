package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Reader reads states back from the EVENTS stream: the newest state of one
// event (read-your-writes without waiting for ClickHouse) and ordered tails
// for watches. It is safe for concurrent use.
type Reader struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// NewReader opens the EVENTS stream for reading. Call Ensure first.
func NewReader(ctx context.Context, js jetstream.JetStream) (*Reader, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	return &Reader{js: js, stream: s}, nil
}

// Latest returns the newest state stored on subject (which may hold
// wildcards, e.g. to find a name in any scope), or nil when the stream holds
// none: never written, or trimmed after commit, in which case ClickHouse has
// it.
func (r *Reader) Latest(ctx context.Context, subject string) (*Record, error) {
	m, err := r.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read latest state on %s: %w", subject, err)
	}
	rec, err := DecodeMsg(m.Subject, m.Header, m.Data, m.Sequence)
	if err != nil {
		return nil, fmt.Errorf("read latest state on %s (seq %d): %w", subject, m.Sequence, err)
	}
	return rec, nil
}

// Bounds returns the first sequence the stream still holds and the last one
// written. A stream with nothing in it reports first = last+1.
func (r *Reader) Bounds(ctx context.Context) (first, last uint64, err error) {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read stream %s bounds: %w", StreamName, err)
	}
	first, last = info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		first = last + 1
	}
	return first, last, nil
}

// Tail delivers, in order, every state on subjects matching filter from
// sequence from on, until ctx ends or Stop is called. Messages that are not
// valid states are skipped (the writer dead-letters them). The returned
// channel is closed when the tail ends; Err then says why (nil when stopped).
func (r *Reader) Tail(ctx context.Context, filter string, from uint64) (*Tail, error) {
	cons, err := r.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
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
	t := &Tail{C: make(chan *Record, 64), it: it}
	go t.run(ctx)
	return t, nil
}

// Tail is an ordered feed of states; see Reader.Tail.
type Tail struct {
	// C carries the states. It is closed when the tail ends.
	C       chan *Record
	it      jetstream.MessagesContext
	stopped atomic.Bool
	once    sync.Once
	// err is set before C is closed.
	err error
}

// Stop ends the tail; C is closed soon after.
func (t *Tail) Stop() {
	t.once.Do(func() {
		t.stopped.Store(true)
		t.it.Stop()
	})
}

// Err reports why the tail ended, once C is closed; nil after Stop or ctx end.
func (t *Tail) Err() error { return t.err }

func (t *Tail) run(ctx context.Context) {
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
		rec, err := DecodeMsg(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
		if err != nil {
			continue
		}
		select {
		case t.C <- rec:
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

// WatchWatermark starts following the watermark until ctx ends.
func WatchWatermark(ctx context.Context, js jetstream.JetStream) (*Watermark, error) {
	kv, err := js.KeyValue(ctx, StateBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", StateBucket, err)
	}
	w, err := kv.Watch(ctx, WatermarkKey)
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", StateBucket, WatermarkKey, err)
	}
	wm := &Watermark{ch: make(chan struct{})}
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
