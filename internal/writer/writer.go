package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/retry"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Inserter commits rows to the query store. Insert returns nil only when
// every row is committed and queryable; it may be called again with the same
// rows after an error.
type Inserter interface {
	Insert(ctx context.Context, rows []chstore.Row) error
}

// WatermarkKey is the key of the committed watermark in the state bucket.
const WatermarkKey = eventlog.WatermarkKey

// Headers of a dead-letter message, beside the original message's headers.
const (
	HeaderDLQReason  = "Eventpipe-Dlq-Reason"
	HeaderDLQSeq     = "Eventpipe-Dlq-Seq"
	HeaderDLQSubject = "Eventpipe-Dlq-Subject"
)

// Writer moves states from the EVENTS stream to ClickHouse. Create it with
// New and call Run once.
type Writer struct {
	cfg    Config
	logCfg eventlog.Config
	js     jetstream.JetStream
	store  Inserter
	log    *slog.Logger
	m      *metrics

	wm *eventlog.Watermark

	// marks remembers the last sequence and store time of recent batches,
	// oldest first, for trimming. Only Run's goroutine touches it.
	marks []mark
	// now is the clock trimming reads; tests move it.
	now func() time.Time
	// lastInsertErr holds the error of the latest insert attempt (nil after
	// a success), for readiness.
	lastInsertErr atomic.Pointer[error]
}

type mark struct {
	seq    uint64
	stored time.Time
}

// New returns a writer. logCfg supplies the stream's retention and size
// bound, which the writer's trimming honours.
func New(js jetstream.JetStream, store Inserter, cfg Config, logCfg eventlog.Config, reg prometheus.Registerer, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.Default()
	}
	return &Writer{cfg: cfg, logCfg: logCfg, js: js, store: store, log: log.With("component", "writer"),
		m: newMetrics(reg), wm: eventlog.NewWatermark(), now: time.Now}
}

// Ready reports why the writer cannot commit right now (its latest insert
// attempt failed), or nil.
func (w *Writer) Ready() error {
	if p := w.lastInsertErr.Load(); p != nil && *p != nil {
		return fmt.Errorf("latest ClickHouse insert failed: %w", *p)
	}
	return nil
}

// Watermark returns the committed watermark known to this writer.
func (w *Writer) Watermark() uint64 { return w.wm.Load() }

// WaitFor blocks until the watermark reaches seq or ctx ends.
func (w *Writer) WaitFor(ctx context.Context, seq uint64) error { return w.wm.WaitFor(ctx, seq) }

// CommittedWatermark is the writer's watermark itself, for readers in the
// same process.
func (w *Writer) CommittedWatermark() *eventlog.Watermark { return w.wm }

func (w *Writer) setWatermark(ctx context.Context, kv jetstream.KeyValue, seq uint64) {
	if seq <= w.wm.Load() {
		return
	}
	w.wm.Advance(seq)
	w.m.watermark.Set(float64(seq))
	// The bucket copy is for other processes (API servers). A failed put only
	// delays them; the next batch puts again.
	if _, err := kv.Put(ctx, WatermarkKey, []byte(strconv.FormatUint(seq, 10))); err != nil && ctx.Err() == nil {
		w.log.Warn("cannot publish watermark", "watermark", seq, "err", err)
	}
}

// Run consumes until ctx ends. It returns nil on cancellation; any other
// error means the writer cannot go on (the stream or consumer is gone).
func (w *Writer) Run(ctx context.Context) error {
	stream, err := w.js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", eventlog.StreamName, err)
	}
	kv, err := w.js.KeyValue(ctx, eventlog.StateBucket)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", eventlog.StateBucket, err)
	}
	// Everything at or below the ack floor was committed by an earlier run;
	// a published watermark above it means the acknowledgement was lost.
	var committed uint64
	if c, err := w.js.Consumer(ctx, eventlog.StreamName, w.cfg.Consumer); err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("read consumer %s: %w", w.cfg.Consumer, err)
		}
		committed = info.AckFloor.Stream
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("read consumer %s: %w", w.cfg.Consumer, err)
	}
	if e, err := kv.Get(ctx, WatermarkKey); err == nil {
		if v, err := strconv.ParseUint(string(e.Value()), 10, 64); err == nil && v > committed {
			committed = v
		}
	}
	cons, err := w.resetConsumer(ctx, committed+1)
	if err != nil {
		return err
	}
	w.setWatermark(ctx, kv, committed)
	w.log.Info("writer started", "consumer", w.cfg.Consumer, "watermark", committed)

	// Two stages overlap: while ClickHouse commits one batch, the next one is
	// fetched and decoded. Fetching, decoding and inserting each take a
	// large share of a batch's time, and they use different resources (this
	// process's CPU, ClickHouse's), so the writer drains about as fast as
	// the slower of the two stages rather than their sum.
	batches := make(chan *batch)
	prodCtx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- w.produce(prodCtx, stream, cons, committed+1, batches)
		close(batches)
	}()
	trimTick := time.NewTicker(w.cfg.TrimInterval)
	defer trimTick.Stop()
	for {
		select {
		case b, open := <-batches:
			if !open {
				if ctx.Err() != nil {
					return nil
				}
				return <-prodErr
			}
			if !w.finish(ctx, stream, kv, b) {
				return nil // ctx ended mid-batch; nothing acknowledged, nothing lost
			}
		case <-trimTick.C:
			w.trim(ctx, stream)
		case <-ctx.Done():
			return nil
		}
	}
}

// batch is a run of consecutive states ready to insert.
type batch struct {
	rows []chstore.Row
	// held are the messages behind rows, kept alive while inserts retry.
	held       []jetstream.Msg
	last       jetstream.Msg
	lastSeq    uint64
	lastStored time.Time
}

// produce fetches and decodes batches, from sequence next on, and hands
// them to out in order. It returns when ctx ends (nil) or when the consumer
// is gone (an error: the writer cannot go on).
func (w *Writer) produce(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer, next uint64, out chan<- *batch) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		msgs, err := w.fetch(cons)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("consumer %s: %w", w.cfg.Consumer, err)
			}
			w.log.Warn("cannot fetch from stream; retrying", "err", err)
			retry.Sleep(ctx, time.Second)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		b, ok, gap := w.prepare(ctx, stream, msgs, &next)
		if !ok {
			return nil
		}
		if b != nil {
			select {
			case out <- b:
			case <-ctx.Done():
				return nil
			}
		}
		if gap {
			if cons, err = w.resetConsumer(ctx, next); err != nil {
				return err
			}
		}
	}
}

// fetch returns up to BatchSize messages, waiting at most BatchWait.
func (w *Writer) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	mb, err := cons.Fetch(w.cfg.BatchSize, jetstream.FetchMaxWait(w.cfg.BatchWait))
	if err != nil {
		return nil, err
	}
	msgs := make([]jetstream.Msg, 0, w.cfg.BatchSize)
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

// prepare turns msgs into rows. next is the sequence the writer expects to
// see next; states are only committed in an unbroken run from it, so the
// watermark never passes a state that is not queryable. Undecodable states
// go to the dead-letter stream (their rows are simply absent). It returns a
// nil batch when msgs held nothing new, gap when delivery must restart from
// next, and ok=false if ctx ended first.
func (w *Writer) prepare(ctx context.Context, stream jetstream.Stream, msgs []jetstream.Msg, next *uint64) (b *batch, ok, gap bool) {
	b = &batch{rows: make([]chstore.Row, 0, len(msgs))}
	for i, msg := range msgs {
		md, err := msg.Metadata()
		if err != nil {
			w.log.Error("message without JetStream metadata; skipping batch rest", "err", err)
			msgs = msgs[:i]
			break
		}
		seq := md.Sequence.Stream
		if seq < *next {
			continue // a redelivery of a state already committed
		}
		if seq > *next && !w.holeBefore(ctx, stream, next, seq) {
			// A state between next and seq exists but was not delivered to us
			// (a lost pull response). Stop here: committing seq would
			// acknowledge the missing state with AckAll. The caller restarts
			// delivery from next.
			w.log.Warn("gap in delivered sequence; restarting delivery", "expected", *next, "got", seq)
			msgs = msgs[:i]
			gap = true
			break
		}
		*next = seq + 1
		b.last, b.lastSeq, b.lastStored = msg, seq, md.Timestamp
		w.m.pending.Set(float64(md.NumPending))

		rec, err := eventlog.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data(), seq)
		if err == nil {
			var row chstore.Row
			row, err = chstore.EncodeRow(rec, md.Timestamp)
			if err == nil {
				b.rows = append(b.rows, row)
				continue
			}
		}
		if !w.deadLetter(ctx, msg, seq, err) {
			return nil, false, gap
		}
	}
	if b.last == nil {
		return nil, true, gap
	}
	b.held = msgs
	return b, true, gap
}

// finish inserts a batch (retrying until ClickHouse takes it or ctx ends),
// acknowledges it, and moves the watermark. It reports false if ctx ended
// first.
func (w *Writer) finish(ctx context.Context, stream jetstream.Stream, kv jetstream.KeyValue, b *batch) bool {
	if len(b.rows) > 0 && !w.insert(ctx, stream, b.rows, b.held) {
		return false
	}
	if err := b.last.Ack(); err != nil {
		// Harmless: the states are committed; a redelivery is skipped by
		// sequence, and the next acknowledgement (AckAll) covers this one.
		w.log.Warn("cannot acknowledge batch", "seq", b.lastSeq, "err", err)
	}
	w.m.written.Add(float64(len(b.rows)))
	w.m.lagSeconds.Set(time.Since(b.lastStored).Seconds())
	w.marks = append(w.marks, mark{seq: b.lastSeq, stored: b.lastStored})
	w.setWatermark(ctx, kv, b.lastSeq)
	return true
}

// holeBefore reports whether every sequence in [*next, seq) is absent from
// the stream (purged), in which case it moves *next to seq.
func (w *Writer) holeBefore(ctx context.Context, stream jetstream.Stream, next *uint64, seq uint64) bool {
	info, err := stream.Info(ctx)
	if err != nil {
		return false
	}
	from := max(*next, info.State.FirstSeq)
	for s := from; s < seq; s++ {
		if _, err := stream.GetMsg(ctx, s); !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false
		}
	}
	*next = seq
	return true
}

// insert retries until ClickHouse commits rows or ctx ends, keeping the held
// messages from being redelivered meanwhile.
func (w *Writer) insert(ctx context.Context, stream jetstream.Stream, rows []chstore.Row, held []jetstream.Msg) bool {
	backoff := 100 * time.Millisecond
	lastRenew, lastTrim := time.Now(), time.Now()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.store.Insert(ctx, rows)
		w.lastInsertErr.Store(&err)
		if err == nil {
			w.m.insertTime.Observe(time.Since(start).Seconds())
			w.m.batchRows.Observe(float64(len(rows)))
			if attempt > 1 {
				w.log.Info("insert succeeded after retries", "attempts", attempt, "rows", len(rows))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.m.insertErrors.Inc()
		w.log.Warn("cannot insert batch; retrying", "attempt", attempt, "rows", len(rows), "backoff", backoff, "err", err)
		if !retry.Sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, w.cfg.RetryMax)
		if time.Since(lastTrim) >= w.cfg.TrimInterval {
			// An outage is when the stream fills: keep making room.
			w.trim(ctx, stream)
			lastTrim = time.Now()
		}
		if time.Since(lastRenew) > w.cfg.AckWait/3 {
			for _, m := range held {
				_ = m.InProgress()
			}
			lastRenew = time.Now()
		}
	}
}

// deadLetter moves an undecodable message to the dead-letter stream with the
// reason. It retries until JetStream takes it: dropping it would lose the
// evidence, and skipping past it without a record would hide the loss.
func (w *Writer) deadLetter(ctx context.Context, msg jetstream.Msg, seq uint64, reason error) bool {
	w.log.Error("message is not a valid event state; moving it to the dead-letter stream",
		"seq", seq, "subject", msg.Subject(), "stream", eventlog.DeadLetterStream, "reason", reason)
	dl := nats.NewMsg(eventlog.DeadLetterSubject)
	for k, v := range msg.Headers() {
		// JetStream's own headers (Nats-Expected-Stream, Nats-Msg-Id, …)
		// were instructions for the original publish; copied, they would
		// make JetStream refuse or deduplicate the dead letter.
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		dl.Header[k] = v
	}
	dl.Header.Set(HeaderDLQReason, reason.Error())
	dl.Header.Set(HeaderDLQSeq, strconv.FormatUint(seq, 10))
	dl.Header.Set(HeaderDLQSubject, msg.Subject())
	dl.Data = msg.Data()
	for {
		_, err := w.js.PublishMsg(ctx, dl, jetstream.WithMsgID("dlq-"+strconv.FormatUint(seq, 10)))
		if err == nil {
			w.m.deadLetters.Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.log.Warn("cannot publish dead letter; retrying", "seq", seq, "err", err)
		if !retry.Sleep(ctx, time.Second) {
			return false
		}
	}
}

// trim purges committed states that are older than the log's retention, or,
// when the stream is over 80% of its size bound, every committed state, so
// that room for new writes wins over watch history. Uncommitted states are
// never purged.
func (w *Writer) trim(ctx context.Context, stream jetstream.Stream) {
	wm := w.wm.Load()
	cutoff := w.now().Add(-w.logCfg.Retention)
	var upTo uint64
	i := 0
	for ; i < len(w.marks) && w.marks[i].stored.Before(cutoff); i++ {
		upTo = w.marks[i].seq
	}
	w.marks = w.marks[i:]
	if info, err := stream.Info(ctx); err == nil && w.logCfg.MaxBytes > 0 &&
		float64(info.State.Bytes) > 0.8*float64(w.logCfg.MaxBytes) && wm > upTo {
		w.log.Warn("stream is over 80% of --stream.max-bytes; purging all committed states, watch history shrinks",
			"bytes", info.State.Bytes, "max", w.logCfg.MaxBytes, "upTo", wm)
		upTo = wm
	}
	if upTo == 0 || upTo > wm {
		return
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(upTo+1)); err != nil {
		w.log.Warn("cannot trim stream", "upTo", upTo, "err", err)
		return
	}
	w.m.trimmed.Inc()
}

// resetConsumer (re)creates the durable consumer so that delivery starts at
// sequence from, with nothing pending. The writer is the consumer's only
// reader, so whatever an earlier run or a lost pull left in flight is simply
// delivered again from from, instead of after AckWait.
func (w *Writer) resetConsumer(ctx context.Context, from uint64) (jetstream.Consumer, error) {
	if err := w.js.DeleteConsumer(ctx, eventlog.StreamName, w.cfg.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s: %w", w.cfg.Consumer, err)
	}
	cons, err := w.js.CreateConsumer(ctx, eventlog.StreamName, jetstream.ConsumerConfig{
		Durable:       w.cfg.Consumer,
		Description:   "eventpipe writer: EVENTS -> ClickHouse",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
		// AckAll: one acknowledgement per batch instead of one per state.
		AckPolicy: jetstream.AckAllPolicy,
		AckWait:   w.cfg.AckWait,
		// One batch being inserted, one being decoded, and slack.
		MaxAckPending: 3 * w.cfg.BatchSize,
		MaxDeliver:    -1,
		FilterSubject: eventlog.SubjectPrefix + ".>",
	})
	if err != nil {
		return nil, fmt.Errorf("reset consumer %s: %w", w.cfg.Consumer, err)
	}
	return cons, nil
}
