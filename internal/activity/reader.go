package activity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Reader reads Activity states back from the ACTIVITIES stream: the newest
// state of one Activity and ordered tails for watches. It is safe for
// concurrent use.
type Reader struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// NewReader opens the ACTIVITIES stream (Ensure creates it).
func NewReader(ctx context.Context, js jetstream.JetStream) (*Reader, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	return &Reader{js: js, stream: s}, nil
}

// Latest returns the newest state on subject (wildcards allowed), or nil.
func (r *Reader) Latest(ctx context.Context, subject string) (*State, error) {
	m, err := r.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read latest activity on %s: %w", subject, err)
	}
	return Decode(m.Subject, m.Header, m.Data, m.Sequence)
}

// Bounds returns the first sequence still held and the last written.
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
// sequence from on. C is closed when the tail ends; Err then says why.
func (r *Reader) Tail(ctx context.Context, filter string, from uint64) (*Tail, error) {
	cons, err := r.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return nil, fmt.Errorf("tail %s from %d: %w", filter, from, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, fmt.Errorf("tail %s from %d: %w", filter, from, err)
	}
	t := &Tail{C: make(chan *State, 64), it: it}
	go t.run(ctx)
	return t, nil
}

// Tail is an ordered feed of Activity states.
type Tail struct {
	// C carries the states; it is closed when the tail ends.
	C       chan *State
	it      jetstream.MessagesContext
	stopped atomic.Bool
	once    sync.Once
	err     error // set before C is closed
}

// Stop ends the tail.
func (t *Tail) Stop() {
	t.once.Do(func() {
		t.stopped.Store(true)
		t.it.Stop()
	})
}

// Err reports why the tail ended, once C is closed.
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
		st, err := Decode(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
		if err != nil {
			continue
		}
		select {
		case t.C <- st:
		case <-ctx.Done():
			return
		}
	}
}
