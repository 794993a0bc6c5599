package activity

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The processor and the indexer consume the same way the writer does: one
// durable pull consumer each, with AckAll, reset at start-up to begin right
// after what is known to be done, so whatever an earlier run left in flight
// is delivered again at once instead of after AckWait. Each is the only
// reader of its consumer.

// resumePoint is the first sequence still to handle: one past the larger of
// the consumer's ack floor and the progress mark kept in the state bucket
// (the mark is written before the acknowledgement, so it may be ahead).
func resumePoint(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, stream, consumer, markKey string) (uint64, error) {
	var done uint64
	if c, err := js.Consumer(ctx, stream, consumer); err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("read consumer %s: %w", consumer, err)
		}
		done = info.AckFloor.Stream
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("read consumer %s: %w", consumer, err)
	}
	if e, err := kv.Get(ctx, markKey); err == nil {
		if v, err := strconv.ParseUint(string(e.Value()), 10, 64); err == nil && v > done {
			done = v
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("read %s: %w", markKey, err)
	}
	return done + 1, nil
}

func resetConsumer(ctx context.Context, js jetstream.JetStream, stream, name, filter, desc string, from uint64, cfg Config) (jetstream.Consumer, error) {
	if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s: %w", name, err)
	}
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: name, Description: desc,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		AckPolicy: jetstream.AckAllPolicy, AckWait: cfg.AckWait, MaxAckPending: 2 * cfg.BatchSize,
		MaxDeliver: -1, FilterSubject: filter,
	})
	if err != nil {
		return nil, fmt.Errorf("reset consumer %s: %w", name, err)
	}
	return cons, nil
}

func fetch(cons jetstream.Consumer, cfg Config) ([]jetstream.Msg, error) {
	mb, err := cons.Fetch(cfg.BatchSize, jetstream.FetchMaxWait(cfg.BatchWait))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

// holeBefore reports whether every sequence in [next, seq) is gone from the
// stream (purged), so that skipping to seq loses nothing still stored.
func holeBefore(ctx context.Context, stream jetstream.Stream, next, seq uint64) bool {
	info, err := stream.Info(ctx)
	if err != nil {
		return false
	}
	for s := max(next, info.State.FirstSeq); s < seq; s++ {
		if _, err := stream.GetMsg(ctx, s); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false
		}
	}
	return true
}

func fatalConsumerErr(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)
}
