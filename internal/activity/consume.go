package activity

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// durable is the consumer one stage reads through, the way the writer
// reads EVENTS: the processor's on EVENTS, the indexer's on ACTIVITIES.
func (c Config) durable(js jetstream.JetStream, stream, name, filter, desc string) eventlog.Durable {
	return eventlog.Durable{JS: js, Stream: stream, Name: name, Description: desc, Filter: filter,
		AckWait: c.AckWait, MaxAckPending: 2 * c.BatchSize, BatchSize: c.BatchSize, BatchWait: c.BatchWait}
}

// resumePoint is the first sequence still to handle: one past the larger of
// the consumer's ack floor and the mark kept in the state bucket under
// markKey (the mark is written before the acknowledgement, so it may be
// ahead).
func resumePoint(ctx context.Context, d eventlog.Durable, kv jetstream.KeyValue, markKey string) (uint64, error) {
	done, err := d.AckFloor(ctx)
	if err != nil {
		return 0, err
	}
	mark, err := eventlog.ReadMark(ctx, kv, markKey)
	if err != nil {
		return 0, err
	}
	return max(done, mark) + 1, nil
}
