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
// New and call Run (again after it returned, when the role regains its
// lease).
type Writer struct {
	cfg    Config
	logCfg eventlog.Config
	js     jetstream.JetStream
	store  Inserter
	log    *slog.Logger
	m      *metrics

	wm *eventlog.Watermark

	// marks are for trimming. Only Run's goroutine touches them.
	marks eventlog.BatchMarks
	// now is the clock trimming reads; tests move it.
	now func() time.Time
	// lastInsertErr holds the error of the latest insert attempt (nil after
	// a success), for readiness.
	lastInsertErr atomic.Pointer[error]
	// fence, when set, says whether this writer may still commit (it holds
	// the writer lease); see SetFence.
	fence func() error
}

// SetFence makes the writer call held right before each insert and again
// before it acknowledges the batch and publishes the watermark; when held
// fails, Run stops and returns its error. With several writer replicas,
// held is the lease's check (internal/lease): a writer that lost the lease
// stops before its successor starts. Call it before Run.
func (w *Writer) SetFence(held func() error) { w.fence = held }

// fenced returns why the writer may not commit now, or nil.
func (w *Writer) fenced() error {
	if w.fence == nil {
		return nil
	}
	return w.fence()
}

// New returns a writer. logCfg supplies the stream's retention and size
// bound, which the writer's trimming honours.
func New(js jetstream.JetStream, store Inserter, cfg Config, logCfg eventlog.Config, reg prometheus.Registerer, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{cfg: cfg, logCfg: logCfg, js: js, store: store, log: log.With("component", "writer"),
		m: newMetrics(reg), wm: eventlog.NewWatermark(), now: time.Now}
	if reg != nil {
		reg.MustRegister(newStreamCollector(w))
	}
	return w
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
// error means the writer cannot go on (the stream or consumer is gone, or
// the fence failed). A writer that stopped for its fence may Run again
// once it holds the lease again: it resumes from the committed watermark.
func (w *Writer) Run(ctx context.Context) error {
	r, err := w.durable().Resume(ctx, WatermarkKey)
	if err != nil {
		return err
	}
	stream, kv, committed := r.Stream, r.KV, r.Done
	if committed == 0 {
		if err := w.checkIndexIsOfThisStream(ctx, stream); err != nil {
			return err
		}
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
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- w.produce(prodCtx, r, batches)
		close(batches)
	}()
	// Run does not return before the producer has: it may be in a fetch,
	// which waits up to the batch wait whatever the context says.
	defer func() {
		stopProducer()
		for range batches {
		}
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
			if err := w.finish(ctx, stream, kv, b); err != nil {
				if ctx.Err() != nil {
					return nil // ctx ended mid-batch; nothing acknowledged, nothing lost
				}
				return err
			}
		case <-trimTick.C:
			w.trim(ctx, stream)
		case <-ctx.Done():
			return nil
		}
	}
}

// newestState is what an Inserter that can tell (the ClickHouse store)
// answers: the highest sequence it holds and the subject of its event, 0
// and "" when empty.
type newestState interface {
	NewestState(ctx context.Context) (seq uint64, subject string, err error)
}

// checkIndexIsOfThisStream runs when the writer starts with no watermark
// and no acknowledged state: a new installation, or a JetStream rebuilt
// from empty disks (state bucket and all) under an index that survived.
// In the second case the index holds states with sequences the new stream
// will give to other states; indexing it would mix two histories, so the
// writer refuses, naming the repair.
func (w *Writer) checkIndexIsOfThisStream(ctx context.Context, stream jetstream.Stream) error {
	ns, ok := w.store.(newestState)
	if !ok {
		return nil
	}
	maxSeq, subject, err := ns.NewestState(ctx)
	if err != nil || maxSeq == 0 {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", eventlog.StreamName, err)
	}
	if info.State.FirstSeq > maxSeq {
		return nil // the stream starts past the index's history
	}
	// A writer that crashed after its very first insert, before any
	// watermark or acknowledgement, finds its own states: the stream
	// holds the index's newest state at the same sequence, on the same
	// event.
	if m, err := stream.GetMsg(ctx, maxSeq); err == nil && m.Subject == subject {
		return nil
	} else if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("read stream %s at %d: %w", eventlog.StreamName, maxSeq, err)
	}
	return fmt.Errorf("%w: ClickHouse holds event states up to sequence %d, but the writer has no watermark and %s starts at "+
		"sequence %d: the index was built from another history of the stream (a JetStream rebuilt from empty disks?), and "+
		"indexing this one would give its states sequences the index already holds. Move the stream past the index: "+
		"`nats stream purge %s --seq %d`, then start the writer again (docs/high-availability.md, \"The EVENTS stream was recreated\")",
		eventlog.ErrStreamRecreated, maxSeq, eventlog.StreamName, info.State.FirstSeq, eventlog.StreamName, maxSeq+1)
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

// produce fetches and decodes batches from where r resumed and hands them
// to out in order. It returns when ctx ends (nil) or when the consumer
// is gone (an error: the writer cannot go on).
func (w *Writer) produce(ctx context.Context, r *eventlog.Resumed, out chan<- *batch) error {
	return r.Consume(ctx, w.log, func(ctx context.Context, fetched eventlog.Batch) bool {
		if len(fetched.Run) == 0 {
			return true
		}
		b, ok := w.prepare(ctx, fetched)
		if !ok {
			return false
		}
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	})
}

// prepare turns a run of states into rows. Undecodable states go to the
// dead-letter stream (their rows are simply absent). It reports false if
// ctx ended first.
func (w *Writer) prepare(ctx context.Context, fetched eventlog.Batch) (*batch, bool) {
	last := fetched.Last()
	b := &batch{rows: make([]chstore.Row, 0, len(fetched.Run)), held: fetched.Fetched,
		last: last.Msg, lastSeq: last.Seq, lastStored: last.Stored}
	for _, d := range fetched.Run {
		msg, seq := d.Msg, d.Seq
		w.m.pending.Set(float64(d.Pending))
		rec, err := eventlog.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data(), seq)
		if err == nil {
			var row chstore.Row
			row, err = chstore.EncodeRow(rec, d.Stored)
			if err == nil {
				b.rows = append(b.rows, row)
				continue
			}
		}
		if !w.deadLetter(ctx, msg, seq, err) {
			return nil, false
		}
	}
	return b, true
}

// finish inserts a batch (retrying until ClickHouse takes it or ctx ends),
// acknowledges it, and moves the watermark. It returns an error if ctx
// ended first or the fence failed; nothing is acknowledged then.
func (w *Writer) finish(ctx context.Context, stream jetstream.Stream, kv jetstream.KeyValue, b *batch) error {
	if len(b.rows) > 0 {
		if err := w.insert(ctx, stream, b.rows, b.held); err != nil {
			return err
		}
	}
	// The insert may have retried for long: check again before recording
	// progress, so that a writer that lost the lease meanwhile does not
	// acknowledge or move the watermark after its successor started.
	if err := w.fenced(); err != nil {
		return fmt.Errorf("stop before acknowledging up to %d: %w", b.lastSeq, err)
	}
	if err := b.last.Ack(); err != nil {
		// Harmless: the states are committed; a redelivery is skipped by
		// sequence, and the next acknowledgement (AckAll) covers this one.
		w.log.Warn("cannot acknowledge batch", "seq", b.lastSeq, "err", err)
	}
	w.m.written.Add(float64(len(b.rows)))
	w.m.lagSeconds.Set(time.Since(b.lastStored).Seconds())
	w.marks.Add(b.lastSeq, b.lastStored)
	w.setWatermark(ctx, kv, b.lastSeq)
	return nil
}

// insert retries until ClickHouse commits rows or ctx ends, keeping the held
// messages from being redelivered meanwhile. It checks the fence before
// every attempt. It returns ctx's error or the fence's.
func (w *Writer) insert(ctx context.Context, stream jetstream.Stream, rows []chstore.Row, held []jetstream.Msg) error {
	backoff := 100 * time.Millisecond
	lastRenew, lastTrim := time.Now(), time.Now()
	for attempt := 1; ; attempt++ {
		if err := w.fenced(); err != nil {
			return fmt.Errorf("stop before inserting %d rows: %w", len(rows), err)
		}
		start := time.Now()
		err := w.store.Insert(ctx, rows)
		w.lastInsertErr.Store(&err)
		if err == nil {
			w.m.insertTime.Observe(time.Since(start).Seconds())
			w.m.batchRows.Observe(float64(len(rows)))
			if attempt > 1 {
				w.log.Info("insert succeeded after retries", "attempts", attempt, "rows", len(rows))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.m.insertErrors.Inc()
		w.log.Warn("cannot insert batch; retrying", "attempt", attempt, "rows", len(rows), "backoff", backoff, "err", err)
		if !retry.Sleep(ctx, backoff) {
			return ctx.Err()
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
	if w.fenced() != nil {
		return
	}
	wm := w.wm.Load()
	upTo := w.marks.TakeBefore(w.now().Add(-w.logCfg.Retention))
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

// durable is the writer's consumer on EVENTS. Its pending room holds one
// batch being inserted, one being decoded, and slack.
func (w *Writer) durable() eventlog.Durable {
	return eventlog.Durable{JS: w.js, Stream: eventlog.StreamName, Name: w.cfg.Consumer,
		Description: "eventpipe writer: EVENTS -> ClickHouse", Filter: eventlog.SubjectPrefix + ".>",
		AckWait: w.cfg.AckWait, MaxAckPending: 3 * w.cfg.BatchSize, BatchSize: w.cfg.BatchSize, BatchWait: w.cfg.BatchWait}
}
