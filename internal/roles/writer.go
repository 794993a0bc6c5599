package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/lease"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/retention"
	"github.com/eventpipe/eventpipe/internal/writer"
)

// WriterOptions configure the writer role: the writer and the retention
// worker beside it.
type WriterOptions struct {
	Writer writer.Config
	// Audit is the audit indexer's (AUDIT -> ClickHouse), which runs beside
	// the writer.
	Audit audit.IndexerConfig
	// TiersConfig is the tiers file whose retentions the retention worker
	// applies; empty: the built-in tiers.
	TiersConfig string
	Retention   retention.Config
	// LeaseTTL is how long the writer lease lasts after its holder's last
	// renewal: the longest a standby replica waits after the active one
	// died. Identity names this replica in the lease (empty: host name,
	// process id and a random suffix).
	LeaseTTL time.Duration
	Identity string
}

// WriterLeaseBucket and WriterLeaseKey hold the writer lease: the replica
// whose identity is the key's value is the active writer.
const (
	WriterLeaseBucket = "EVENTPIPE_WRITER_LEASE"
	WriterLeaseKey    = "writer"
)

// DefaultWriterOptions returns the documented defaults.
func DefaultWriterOptions() WriterOptions {
	return WriterOptions{Writer: writer.DefaultConfig(), Audit: audit.DefaultIndexerConfig(), Retention: retention.DefaultConfig(),
		LeaseTTL: 10 * time.Second}
}

// AddFlags registers the options on fs.
func (o *WriterOptions) AddFlags(fs *pflag.FlagSet) {
	o.Writer.AddFlags(fs)
	fs.StringVar(&o.TiersConfig, "tiers.config", o.TiersConfig,
		"tiers file whose retentions the retention worker applies (docs/tiers.md); empty: the built-in tiers, every tenant on Free")
	fs.DurationVar(&o.Retention.Interval, "retention.interval", o.Retention.Interval, "time between retention runs")
	fs.BoolVar(&o.Retention.DryRun, "retention.dry-run", o.Retention.DryRun,
		"log what retention would delete (rows per tenant, partitions) without deleting")
	fs.DurationVar(&o.LeaseTTL, "writer.lease-ttl", o.LeaseTTL,
		"how long the writer lease (JetStream KV bucket "+WriterLeaseBucket+") lasts after the active replica's last renewal: a standby takes over this long after the active one died; the same on every replica")
	fs.StringVar(&o.Identity, "writer.identity", o.Identity,
		"this replica's name in the writer lease, unique among replicas; empty: host name, process id and a random suffix")
}

// Validate returns every problem with o.
func (o *WriterOptions) Validate() []error {
	errs := o.Writer.Validate()
	if o.Retention.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("--retention.interval must be at least 1m, got %s", o.Retention.Interval))
	}
	if o.LeaseTTL < 2*time.Second || o.LeaseTTL > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--writer.lease-ttl must be between 2s and 5m, got %s", o.LeaseTTL))
	}
	return errs
}

// Writer is the writer role: it moves event states from EVENTS into
// ClickHouse and publishes the committed watermark, and its retention
// worker deletes each tenant's events past its tier's retention. Its
// replicas elect one active one through the writer lease; the others
// stand by.
type Writer struct {
	w         *writer.Writer
	audit     *audit.Indexer
	watcher   *tiers.Watcher
	retention *retention.Worker
	lease     *lease.Lease
	c         *Conns
	log       *slog.Logger
}

// NewWriter builds the writer role on c, whose store must be open. reg
// receives its metrics.
func NewWriter(ctx context.Context, c *Conns, o WriterOptions, reg prometheus.Registerer, log *slog.Logger) (*Writer, error) {
	if err := joinErrors(o.Validate()); err != nil {
		return nil, err
	}
	l, err := lease.Ensure(ctx, c.JS, lease.Config{Bucket: WriterLeaseBucket, Key: WriterLeaseKey, Identity: o.Identity,
		TTL: o.LeaseTTL, Replicas: c.Stream.Replicas, MetricPrefix: "eventpipe_writer"}, reg, log)
	if err != nil {
		return nil, err
	}
	w := writer.New(c.JS, c.Store, o.Writer, c.Stream, reg, log)
	w.SetFence(l.Held)
	res, watcher, err := loadTiers(o.TiersConfig, reg, log)
	if err != nil {
		return nil, err
	}
	o.Audit.Retention = c.Stream.Retention
	ax := audit.NewIndexer(c.JS, c.Store, o.Audit, reg, log)
	ax.SetFence(l.Held)
	return &Writer{w: w, audit: ax, watcher: watcher, lease: l, c: c, log: log,
		retention: retention.New(c.Store, res, o.Retention, clock.RealClock{}, reg, log)}, nil
}

// Writer is the writer itself: its watermark, for readers in this process.
func (w *Writer) Writer() *writer.Writer { return w.w }

// Ready fails until the writer has started consuming.
func (w *Writer) Ready() error { return w.w.Ready() }

// Audit is the audit indexer: its watermark, for readers in this process.
func (w *Writer) Audit() *audit.Indexer { return w.audit }

// Run campaigns for the writer lease until ctx ends and, while this
// replica holds it, runs the writer, the audit indexer and the retention
// worker: each assumes it is alone (one durable consumer each, read with
// AckAll). When the lease is lost they stop and the replica stands by
// again. The tiers file's watcher runs throughout. Run returns nil on
// cancellation; any other error means the writer or the audit indexer
// cannot go on (the other stops with it).
func (w *Writer) Run(ctx context.Context) error {
	if w.watcher != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.watcher.Run(wctx)
	}
	return w.lease.Run(ctx, w.active)
}

// Leader reports whether this replica holds the writer lease.
func (w *Writer) Leader() bool { return w.lease.Held() == nil }

// active runs the work of the lease holder until ctx ends (the lease was
// lost or the process stops) or one part fails. It first checks that EVENTS
// is still the stream whose sequences the watermark counts: a replica that
// takes the lease long after it started must not resume a recreated
// stream from the old watermark, skipping its first states.
func (w *Writer) active(ctx context.Context) error {
	if _, err := eventlog.CheckEpoch(ctx, w.c.JS); err != nil {
		return err
	}
	err := w.c.runGuarded(ctx, w.log, w.activeParts)
	if err != nil && !errors.Is(err, lease.ErrLost) && ctx.Err() == nil {
		// A consumer that vanished is most often a stream deleted under
		// it: say so, rather than only that the consumer is gone.
		if _, eerr := eventlog.CheckEpoch(ctx, w.c.JS); errors.Is(eerr, eventlog.ErrStreamRecreated) {
			return eerr
		} else if errors.Is(eerr, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: it was deleted (%v)", eventlog.ErrStreamRecreated, err)
		}
	}
	return err
}

// activeParts runs the writer, the audit indexer and the retention worker.
func (w *Writer) activeParts(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	retentionDone := make(chan struct{})
	go func() { w.retention.Run(ctx); close(retentionDone) }()
	defer func() { cancel(); <-retentionDone }()
	auditDone, writerDone := make(chan error, 1), make(chan error, 1)
	go func() { auditDone <- w.audit.Run(ctx) }()
	go func() { writerDone <- w.w.Run(ctx) }()
	select {
	case err := <-writerDone:
		cancel()
		<-auditDone
		return err
	case err := <-auditDone:
		cancel()
		werr := <-writerDone
		if err != nil {
			return fmt.Errorf("audit indexer: %w", err)
		}
		return werr
	}
}

// joinErrors is nil for no problems, else all of them.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid options:\n%w", errors.Join(errs...))
}
