package audit

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Inserter commits audit rows; nil means committed and queryable. It may be
// called again with the same rows after an error, and rows already stored
// (a record kube-apiserver resent after the duplicate window) must not show
// up twice in reads.
type Inserter interface {
	InsertAudit(ctx context.Context, rows []chstore.AuditRow) error
}

// IndexerConfig tunes the indexer.
type IndexerConfig struct {
	// Consumer is the durable consumer's name.
	Consumer string
	// BatchSize and BatchWait bound one ClickHouse insert.
	BatchSize int
	BatchWait time.Duration
	AckWait   time.Duration
	// Retention is how long an indexed record stays in the stream.
	Retention time.Duration
	// TrimInterval is how often indexed records past Retention are purged.
	TrimInterval time.Duration
}

// DefaultIndexerConfig returns the documented defaults.
func DefaultIndexerConfig() IndexerConfig {
	return IndexerConfig{Consumer: "audit-indexer", BatchSize: 5000, BatchWait: 200 * time.Millisecond,
		AckWait: time.Minute, Retention: time.Hour, TrimInterval: time.Minute}
}

// Indexer moves audit records from AUDIT into ClickHouse and publishes the
// audit watermark (WatermarkKey). Like the events writer it acknowledges a
// batch only after ClickHouse has committed it, so a crash re-delivers
// rather than loses. Create it with NewIndexer and call Run; it may run
// again after it returned (the writer role does when it regains its lease).
type Indexer struct {
	cfg   IndexerConfig
	js    jetstream.JetStream
	store Inserter
	log   *slog.Logger
	wm    *eventlog.Watermark
	marks eventlog.BatchMarks // only Run's goroutine touches them

	indexed, insertErrs, undecodable prometheus.Counter
	watermark                        prometheus.Gauge

	// fence, when set, says whether this indexer may still commit; see
	// SetFence.
	fence func() error
	// fenceErr is why Run stopped for the fence; only Run's goroutine
	// touches it.
	fenceErr error
}

// SetFence makes the indexer call held right before each insert and again
// before it acknowledges and publishes its watermark; when held fails, Run
// stops and returns its error (writer.Writer.SetFence says why). Call it
// before Run.
func (x *Indexer) SetFence(held func() error) { x.fence = held }

// fenced records and returns why the indexer may not commit now, or nil.
func (x *Indexer) fenced() error {
	if x.fence == nil {
		return nil
	}
	x.fenceErr = x.fence()
	return x.fenceErr
}

// NewIndexer returns an indexer writing to store; its metrics go to reg
// (may be nil).
func NewIndexer(js jetstream.JetStream, store Inserter, cfg IndexerConfig, reg prometheus.Registerer, log *slog.Logger) *Indexer {
	if log == nil {
		log = slog.Default()
	}
	x := &Indexer{cfg: cfg, js: js, store: store, log: log.With("component", "audit-indexer"), wm: eventlog.NewWatermark(),
		indexed:     prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_audit_indexed_total", Help: "Audit records inserted into ClickHouse."}),
		insertErrs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_audit_insert_errors_total", Help: "Failed ClickHouse inserts of audit records (each retried)."}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_audit_undecodable_total", Help: "AUDIT messages that are not audit records, skipped."}),
		watermark:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_audit_watermark", Help: "Highest AUDIT sequence committed to ClickHouse."}),
	}
	if reg != nil {
		reg.MustRegister(x.indexed, x.insertErrs, x.undecodable, x.watermark)
	}
	return x
}

// Watermark is the committed watermark, for readers in the same process.
func (x *Indexer) Watermark() *eventlog.Watermark { return x.wm }

// Run consumes until ctx ends; it returns nil on cancellation, the fence's
// error when it stopped for it (it may Run again later).
func (x *Indexer) Run(ctx context.Context) error {
	x.fenceErr = nil
	d := eventlog.Durable{JS: x.js, Stream: StreamName, Name: x.cfg.Consumer, Filter: SubjectPrefix + ".>",
		Description: "eventpipe audit indexer: AUDIT -> ClickHouse", AckWait: x.cfg.AckWait,
		MaxAckPending: 2 * x.cfg.BatchSize, BatchSize: x.cfg.BatchSize, BatchWait: x.cfg.BatchWait}
	s, err := d.Resume(ctx, WatermarkKey)
	if err != nil {
		return err
	}
	x.wm.Advance(s.Done)
	x.watermark.Set(float64(s.Done))
	x.log.Info("audit indexer started", "consumer", x.cfg.Consumer, "watermark", s.Done)
	lastTrim := time.Now()
	err = s.Consume(ctx, x.log, func(ctx context.Context, b eventlog.Batch) bool {
		if len(b.Run) > 0 && !x.commit(ctx, s.KV, b) {
			return false
		}
		if time.Since(lastTrim) >= x.cfg.TrimInterval {
			x.trim(ctx, s.Stream)
			lastTrim = time.Now()
		}
		return true
	})
	if err == nil && ctx.Err() == nil && x.fenceErr != nil {
		return x.fenceErr
	}
	return err
}

// commit inserts a run of records (retrying until ClickHouse takes them),
// publishes the watermark and acknowledges. It reports false if ctx ended
// first.
func (x *Indexer) commit(ctx context.Context, kv jetstream.KeyValue, b eventlog.Batch) bool {
	rows := make([]chstore.AuditRow, 0, len(b.Run))
	for _, d := range b.Run {
		rec, err := Decode(d.Msg.Subject(), d.Msg.Data(), d.Seq, d.Stored)
		if err == nil {
			var row chstore.AuditRow
			if row, err = rec.Row(); err == nil {
				rows = append(rows, row)
				continue
			}
		}
		// The receiver validated every record; only a foreign publisher
		// gets here, and holding the stream up for it would stop them all.
		x.undecodable.Inc()
		x.log.Error("not an audit record; skipping", "seq", d.Seq, "subject", d.Msg.Subject(), "err", err)
	}
	last := b.Last()
	if x.fenced() != nil {
		return false
	}
	if len(rows) > 0 && !eventlog.InsertUntilStored(ctx, last, x.cfg.AckWait, func(ctx context.Context) error { return x.store.InsertAudit(ctx, rows) },
		func(err error) {
			x.insertErrs.Inc()
			x.log.Warn("cannot insert audit records; retrying", "rows", len(rows), "err", err)
		}) {
		return false
	}
	if x.fenced() != nil {
		return false
	}
	if _, err := kv.Put(ctx, WatermarkKey, []byte(strconv.FormatUint(last.Seq, 10))); err != nil && ctx.Err() == nil {
		x.log.Warn("cannot publish audit watermark", "watermark", last.Seq, "err", err)
	}
	if err := last.Msg.Ack(); err != nil {
		x.log.Warn("cannot acknowledge audit batch", "seq", last.Seq, "err", err)
	}
	x.indexed.Add(float64(len(rows)))
	x.watermark.Set(float64(last.Seq))
	x.wm.Advance(last.Seq)
	x.marks.Add(last.Seq, last.Stored)
	return true
}

// trim purges indexed records stored longer ago than the retention;
// records not yet indexed are never purged.
func (x *Indexer) trim(ctx context.Context, stream jetstream.Stream) {
	if x.fence != nil && x.fence() != nil {
		return
	}
	upTo := x.marks.TakeBefore(time.Now().Add(-x.cfg.Retention))
	if upTo == 0 || upTo > x.wm.Load() {
		return
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(upTo+1)); err != nil {
		x.log.Warn("cannot trim audit stream", "upTo", upTo, "err", err)
	}
}

// WatchWatermark follows the indexer's watermark through the state bucket,
// for API servers in other processes.
func WatchWatermark(ctx context.Context, js jetstream.JetStream) (*eventlog.Watermark, error) {
	return eventlog.WatchWatermarkKey(ctx, js, WatermarkKey)
}
