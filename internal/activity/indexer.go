package activity

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Inserter commits activity rows; nil means committed and queryable. It may
// be called again with the same rows after an error.
type Inserter interface {
	InsertActivities(ctx context.Context, rows []chstore.ActivityRow) error
}

// Indexer moves Activity states from ACTIVITIES into ClickHouse and
// publishes the activity watermark (WatermarkKey): every ACTIVITIES sequence
// at or below it is queryable, so a list at the watermark and a watch from
// it meet without a gap, as for events. It also trims indexed states older
// than the stream's retention. Create it with NewIndexer and call Run once.
type Indexer struct {
	cfg   Config
	js    jetstream.JetStream
	store Inserter
	log   *slog.Logger
	m     *metrics
	wm    *eventlog.Watermark
	// marks are for trimming. Only Run's goroutine touches them.
	marks eventlog.BatchMarks
}

// NewIndexer returns an indexer writing to store.
func NewIndexer(js jetstream.JetStream, store Inserter, cfg Config, m *Metrics, log *slog.Logger) *Indexer {
	if log == nil {
		log = slog.Default()
	}
	return &Indexer{cfg: cfg, js: js, store: store, log: log.With("component", "activity-indexer"), m: m.m, wm: eventlog.NewWatermark()}
}

// Watermark is the indexer's committed watermark, for readers in the same
// process.
func (x *Indexer) Watermark() *eventlog.Watermark { return x.wm }

// Run consumes until ctx ends; it returns nil on cancellation.
func (x *Indexer) Run(ctx context.Context) error {
	s, err := x.cfg.durable(x.js, StreamName, x.cfg.IndexerConsumer, SubjectPrefix+".>",
		"eventpipe activity indexer: ACTIVITIES -> ClickHouse").Resume(ctx, WatermarkKey)
	if err != nil {
		return err
	}
	x.wm.Advance(s.Done)
	x.m.watermark.Set(float64(s.Done))
	x.log.Info("activity indexer started", "consumer", x.cfg.IndexerConsumer, "watermark", s.Done)
	lastTrim := time.Now()
	return s.Consume(ctx, x.log, func(ctx context.Context, b eventlog.Batch) bool {
		if len(b.Run) > 0 && !x.commit(ctx, s.KV, b) {
			return false
		}
		if time.Since(lastTrim) >= x.cfg.TrimInterval {
			x.trim(ctx, s.Stream)
			lastTrim = time.Now()
		}
		return true
	})
}

// commit inserts a run of activity states (retrying until ClickHouse takes
// it), publishes the watermark and acknowledges. It reports false if ctx
// ended first.
func (x *Indexer) commit(ctx context.Context, kv jetstream.KeyValue, b eventlog.Batch) bool {
	rows := make([]chstore.ActivityRow, 0, len(b.Run))
	for _, d := range b.Run {
		msg, seq := d.Msg, d.Seq
		st, err := Decode(msg.Subject(), msg.Headers(), msg.Data(), seq)
		if err != nil {
			x.log.Error("not an activity state; skipping", "seq", seq, "subject", msg.Subject(), "err", err)
			continue
		}
		row, err := st.Row()
		if err != nil {
			x.log.Error("cannot encode activity row; skipping", "seq", seq, "err", err)
			continue
		}
		rows = append(rows, row)
	}
	last := b.Last()
	if !eventlog.InsertUntilStored(ctx, last, x.cfg.AckWait, func(ctx context.Context) error { return x.store.InsertActivities(ctx, rows) },
		func(err error) {
			x.m.insertErrs.Inc()
			x.log.Warn("cannot insert activities; retrying", "rows", len(rows), "err", err)
		}) {
		return false
	}
	if _, err := kv.Put(ctx, WatermarkKey, []byte(strconv.FormatUint(last.Seq, 10))); err != nil && ctx.Err() == nil {
		x.log.Warn("cannot publish activity watermark", "watermark", last.Seq, "err", err)
	}
	if err := last.Msg.Ack(); err != nil {
		x.log.Warn("cannot acknowledge activity batch", "seq", last.Seq, "err", err)
	}
	x.m.indexed.Add(float64(len(rows)))
	x.m.watermark.Set(float64(last.Seq))
	x.wm.Advance(last.Seq)
	x.marks.Add(last.Seq, last.Stored)
	return true
}

// trim purges indexed states stored longer ago than the retention. States
// not yet indexed are never purged.
func (x *Indexer) trim(ctx context.Context, stream jetstream.Stream) {
	upTo := x.marks.TakeBefore(time.Now().Add(-x.cfg.Stream.Retention))
	if upTo == 0 || upTo > x.wm.Load() {
		return
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(upTo+1)); err != nil {
		x.log.Warn("cannot trim activity stream", "upTo", upTo, "err", err)
		return
	}
	x.m.trimmed.Inc()
}

// WatchWatermark follows the indexer's watermark through the state bucket,
// for API servers in other processes.
func WatchWatermark(ctx context.Context, js jetstream.JetStream) (*eventlog.Watermark, error) {
	return eventlog.WatchWatermarkKey(ctx, js, WatermarkKey)
}
