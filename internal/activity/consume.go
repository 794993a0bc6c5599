package activity

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// durable is the consumer one stage reads through, the way the writer
// reads EVENTS: the processor's on EVENTS, the indexer's on ACTIVITIES.
func (c Config) durable(js jetstream.JetStream, stream, name, filter, desc string) eventlog.Durable {
	return eventlog.Durable{JS: js, Stream: stream, Name: name, Description: desc, Filter: filter,
		AckWait: c.AckWait, MaxAckPending: 2 * c.BatchSize, BatchSize: c.BatchSize, BatchWait: c.BatchWait}
}

// stage is a pipeline stage's consumer, ready to consume.
type stage struct {
	d      eventlog.Durable
	stream jetstream.Stream
	// kv is the state bucket, where the stage keeps its mark.
	kv   jetstream.KeyValue
	cons jetstream.Consumer
	// next is the first sequence still to handle.
	next uint64
}

// startStage opens d's stream and the state bucket and resets d's consumer
// at the resume point: one past the larger of the consumer's ack floor and
// the mark kept under markKey (the mark is written before the
// acknowledgement, so it may be ahead).
func startStage(ctx context.Context, d eventlog.Durable, markKey string) (*stage, error) {
	stream, kv, err := d.Open(ctx)
	if err != nil {
		return nil, err
	}
	done, err := d.AckFloor(ctx)
	if err != nil {
		return nil, err
	}
	mark, err := eventlog.ReadMark(ctx, kv, markKey)
	if err != nil {
		return nil, err
	}
	next := max(done, mark) + 1
	cons, err := d.Reset(ctx, next)
	if err != nil {
		return nil, err
	}
	return &stage{d: d, stream: stream, kv: kv, cons: cons, next: next}, nil
}

// consume reads the stage's consumer until ctx ends, as
// eventlog.Durable.Consume does.
func (s *stage) consume(ctx context.Context, log *slog.Logger, handle func(ctx context.Context, b eventlog.Batch) bool) error {
	return s.d.Consume(ctx, s.cons, s.stream, s.next, log, handle)
}
