package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/retry"
)

// Durable is a durable pull consumer that one process reads alone, in
// stream order, to move states somewhere and then record how far it got:
// the writer (EVENTS -> ClickHouse), the activity processor (EVENTS ->
// ACTIVITIES) and the activity indexer (ACTIVITIES -> ClickHouse).
//
// It acknowledges with AckAll, one acknowledgement per batch instead of one
// per state, which is why only one reader may use it: a second one could
// acknowledge states the first still holds. Being the only reader also lets
// Reset simply recreate the consumer at the first sequence still to do, so
// whatever an earlier run or a lost pull left in flight is delivered again
// at once instead of after AckWait.
type Durable struct {
	JS     jetstream.JetStream
	Stream string
	// Name is the durable consumer's name.
	Name        string
	Description string
	Filter      string
	// AckWait is JetStream's redelivery timeout; a reader that holds a
	// batch longer (an insert retrying) renews it with InProgress.
	AckWait time.Duration
	// MaxAckPending bounds the states delivered and not yet acknowledged:
	// room for the batches the reader holds at once.
	MaxAckPending int
	// BatchSize and BatchWait bound one fetch: at most BatchSize states,
	// waiting at most BatchWait for them.
	BatchSize int
	BatchWait time.Duration
}

// Open opens the stream the consumer reads and the state bucket, where
// readers keep their watermarks and progress marks.
func (d Durable) Open(ctx context.Context) (jetstream.Stream, jetstream.KeyValue, error) {
	stream, err := d.JS.Stream(ctx, d.Stream)
	if err != nil {
		return nil, nil, fmt.Errorf("open stream %s: %w", d.Stream, err)
	}
	kv, err := d.JS.KeyValue(ctx, StateBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s: %w", StateBucket, err)
	}
	return stream, kv, nil
}

// AckFloor is the last sequence the consumer acknowledged (every state at
// or below it is done), 0 when the consumer does not exist yet.
func (d Durable) AckFloor(ctx context.Context) (uint64, error) {
	c, err := d.JS.Consumer(ctx, d.Stream, d.Name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read consumer %s: %w", d.Name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read consumer %s: %w", d.Name, err)
	}
	return info.AckFloor.Stream, nil
}

// ReadMark returns the sequence stored under key in kv (a watermark or a
// progress mark), 0 when the key is absent or does not hold a number.
func ReadMark(ctx context.Context, kv jetstream.KeyValue, key string) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	v, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, nil
	}
	return v, nil
}

// Reset deletes and recreates the consumer so that delivery starts at
// sequence from with nothing pending.
func (d Durable) Reset(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	if err := d.JS.DeleteConsumer(ctx, d.Stream, d.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s: %w", d.Name, err)
	}
	cons, err := d.JS.CreateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{
		Durable:       d.Name,
		Description:   d.Description,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       d.AckWait,
		MaxAckPending: d.MaxAckPending,
		MaxDeliver:    -1,
		FilterSubject: d.Filter,
	})
	if err != nil {
		return nil, fmt.Errorf("reset consumer %s: %w", d.Name, err)
	}
	return cons, nil
}

// Resumed is a Durable reset at the point its reader got to, ready to
// Consume.
type Resumed struct {
	d      Durable
	cons   jetstream.Consumer
	Stream jetstream.Stream
	// KV is the state bucket, where the reader keeps its mark.
	KV jetstream.KeyValue
	// Done is the last sequence an earlier run finished; delivery starts
	// right after it.
	Done uint64
}

// Resume opens the stream and the state bucket and resets the consumer
// right after the last state an earlier run finished: the larger of the
// consumer's ack floor and the mark the reader keeps under markKey (the
// reader writes its mark before it acknowledges, so the mark may be ahead).
// An unreadable mark is no reason not to start: the ack floor alone is a
// safe, if earlier, place to resume, and every reader takes a state again
// without harm (a crash between mark and acknowledgement does the same).
func (d Durable) Resume(ctx context.Context, markKey string) (*Resumed, error) {
	stream, kv, err := d.Open(ctx)
	if err != nil {
		return nil, err
	}
	done, err := d.AckFloor(ctx)
	if err != nil {
		return nil, err
	}
	if mark, err := ReadMark(ctx, kv, markKey); err == nil {
		done = max(done, mark)
	}
	cons, err := d.Reset(ctx, done+1)
	if err != nil {
		return nil, err
	}
	return &Resumed{d: d, cons: cons, Stream: stream, KV: kv, Done: done}, nil
}

// Consume reads from where Resume put the consumer until ctx ends, as
// Durable.Consume does. Call it once.
func (r *Resumed) Consume(ctx context.Context, log *slog.Logger, handle func(ctx context.Context, b Batch) bool) error {
	return r.d.Consume(ctx, r.cons, r.Stream, r.Done+1, log, handle)
}

// Delivery is one state of a Batch's unbroken run.
type Delivery struct {
	Msg jetstream.Msg
	Seq uint64
	// Stored is when the stream stored the state.
	Stored time.Time
	// Pending is how many states the stream held for the consumer beyond
	// this one when it was delivered (the reader's lag, in states).
	Pending uint64
	// Purged is how many sequences right before Seq were purged from the
	// stream before the reader saw them (0 almost always).
	Purged uint64
}

// Batch is what one fetch brought that is still to do.
type Batch struct {
	// Run holds the states from the first sequence still to do on, in
	// order, none missing but purged ones; empty when the fetch brought
	// nothing new.
	Run []Delivery
	// Fetched is every message delivered up to the end of Run, redeliveries
	// of states already done included: the ones a reader that holds the
	// batch long keeps from redelivery (InProgress).
	Fetched []jetstream.Msg
}

// Last is the batch's last new state; Run must not be empty.
func (b Batch) Last() Delivery { return b.Run[len(b.Run)-1] }

// Consume reads cons, created by Reset(ctx, next), until ctx ends. After
// every fetch it calls handle with what is new; handle returns false when
// ctx ended under it, and Consume then returns nil. Handle is called even
// for a fetch that brought nothing new, so a reader can do periodic work
// there.
//
// A state is only handed on in an unbroken run from next: when a state
// between next and a delivered one exists but was not delivered (a lost
// pull response), the batch stops before it and, once handle is done,
// delivery restarts from there; handling past it would acknowledge the
// missing state with AckAll. Consume returns an error only when the
// consumer is gone and reading cannot go on.
func (d Durable) Consume(ctx context.Context, cons jetstream.Consumer, stream jetstream.Stream, next uint64,
	log *slog.Logger, handle func(ctx context.Context, b Batch) bool) error {
	for ctx.Err() == nil {
		msgs, err := d.fetch(cons)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("consumer %s: %w", d.Name, err)
			}
			log.Warn("cannot fetch from stream; retrying", "err", err)
			retry.Sleep(ctx, time.Second)
			continue
		}
		b, gap := d.cut(ctx, stream, msgs, &next, log)
		if !handle(ctx, b) {
			return nil
		}
		if gap {
			if cons, err = d.Reset(ctx, next); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch returns up to BatchSize messages, waiting at most BatchWait.
func (d Durable) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	mb, err := cons.Fetch(d.BatchSize, jetstream.FetchMaxWait(d.BatchWait))
	if err != nil {
		return nil, err
	}
	msgs := make([]jetstream.Msg, 0, d.BatchSize)
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

// cut picks the unbroken run from *next out of msgs and moves *next past
// it. gap reports that the run stopped at an undelivered state.
func (d Durable) cut(ctx context.Context, stream jetstream.Stream, msgs []jetstream.Msg, next *uint64, log *slog.Logger) (b Batch, gap bool) {
	// Sized once: batches run to thousands of states, and growing the run
	// by appending copied it over and over on the writer's hot path.
	b.Run = make([]Delivery, 0, len(msgs))
	for i, msg := range msgs {
		md, err := msg.Metadata()
		if err != nil {
			log.Error("message without JetStream metadata; skipping batch rest", "err", err)
			msgs = msgs[:i]
			break
		}
		seq := md.Sequence.Stream
		if seq < *next {
			continue // a redelivery of a state already done
		}
		var purged uint64
		if seq > *next {
			if !purgedBetween(ctx, stream, *next, seq) {
				log.Warn("gap in delivered sequence; restarting delivery", "expected", *next, "got", seq)
				msgs = msgs[:i]
				gap = true
				break
			}
			purged = seq - *next
		}
		*next = seq + 1
		b.Run = append(b.Run, Delivery{Msg: msg, Seq: seq, Stored: md.Timestamp, Pending: md.NumPending, Purged: purged})
	}
	b.Fetched = msgs
	return b, gap
}

// purgedBetween reports whether every sequence in [from, to) is gone from
// the stream, so that skipping to `to` loses nothing still stored.
func purgedBetween(ctx context.Context, stream jetstream.Stream, from, to uint64) bool {
	info, err := stream.Info(ctx)
	if err != nil {
		return false
	}
	for s := max(from, info.State.FirstSeq); s < to; s++ {
		if _, err := stream.GetMsg(ctx, s); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false
		}
	}
	return true
}

// BatchMarks remembers where a reader's recent batches ended and when the
// stream stored their last state, oldest first. A reader purges the states
// it is done with once they are older than the stream's retention, and
// these marks tell it how far that reaches without asking the stream. It
// is not safe for concurrent use.
type BatchMarks struct{ marks []batchMark }

type batchMark struct {
	seq    uint64
	stored time.Time
}

// Add records a batch done up to seq, whose last state was stored then.
func (m *BatchMarks) Add(seq uint64, stored time.Time) {
	m.marks = append(m.marks, batchMark{seq: seq, stored: stored})
}

// TakeBefore forgets the batches whose last state was stored before cutoff
// and returns the last sequence of the newest of them, 0 when there is
// none.
func (m *BatchMarks) TakeBefore(cutoff time.Time) uint64 {
	var upTo uint64
	i := 0
	for ; i < len(m.marks) && m.marks[i].stored.Before(cutoff); i++ {
		upTo = m.marks[i].seq
	}
	m.marks = m.marks[i:]
	return upTo
}

// InsertUntilStored calls insert until it succeeds, and reports true, or
// until ctx ends, and reports false. It waits between attempts from 100 ms
// doubling to 10 s, calls onError with each failure, and tells JetStream
// every ackWait/3 that the batch ending at last is still in progress, so
// that it is not redelivered while its store is down.
func InsertUntilStored(ctx context.Context, last Delivery, ackWait time.Duration, insert func(context.Context) error, onError func(error)) bool {
	backoff := 100 * time.Millisecond
	lastRenew := time.Now()
	for {
		err := insert(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		onError(err)
		if !retry.Sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, 10*time.Second)
		if time.Since(lastRenew) > ackWait/3 {
			_ = last.Msg.InProgress()
			lastRenew = time.Now()
		}
	}
}
