// Package quota keeps each tenant's stored bytes current and refuses writes
// that would take a tenant past its tier's storage quota.
//
// # What is counted
//
// A row's size is clickhouse.RowBytes: the bytes of its values as ClickHouse
// holds them uncompressed (the lengths of the 24 String columns, protobuf
// remainder "rest" included, plus 21 bytes of numbers). It is close to the
// uncompressed row size, independent of compression and merges, and the
// same figure in Go (charging a write) and in SQL (measuring the table).
// Every stored state counts: an event updated ten times stores ten rows.
//
// # How it stays current
//
// Refresh measures ClickHouse per day partition and remembers, per
// partition, the row count, the highest sequence counted and the mutation
// version. A partition whose rows and mutation version did not change is
// not read again; one that only grew is read for rows above the sequence
// already counted (inserts come in sequence order from the single writer);
// one that shrank or was mutated (a retention DELETE) is read whole, as is
// everything every FullEvery. Dropped partitions are forgotten. So a
// refresh normally reads only the new rows of today's partition.
//
// Writes accepted since (Reserve, then Commit with the stream sequence) are
// added until ClickHouse has them: a refresh forgets the ones at or below the
// committed watermark read before it started, so each write counts once.
package quota

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tiers"
)

// Source measures the events table; *clickhouse.Store is one.
type Source interface {
	Partitions(ctx context.Context) ([]chstore.Partition, error)
	PartitionUsage(ctx context.Context, id string, afterSeq uint64) ([]chstore.ScopeUsage, uint64, error)
}

// Limits gives a scope's effective limits; *tiers.Resolver is one.
type Limits interface {
	For(sc scope.Scope) tiers.Limits
}

// Config tunes a Tracker.
type Config struct {
	// Interval is the time between refreshes in Run.
	Interval time.Duration
	// FullEvery forces a full re-measure of every partition this often
	// (folds of duplicate rows by merges are only seen then).
	FullEvery time.Duration
	// Committed returns the writer's committed watermark (every sequence at
	// or below it is in ClickHouse), e.g. (*eventlog.Watermark).Load. When
	// nil the highest sequence a refresh counted is used instead, which is
	// the same as long as the writer commits in order.
	Committed func() uint64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return Config{Interval: 30 * time.Second, FullEvery: 6 * time.Hour} }

// EventBytes is what storing rec will charge to its tenant's quota.
func EventBytes(rec *eventlog.Record) (int64, error) {
	row, err := chstore.EncodeRow(rec, time.Time{})
	if err != nil {
		return 0, err
	}
	return chstore.RowBytes(&row), nil
}

// Tracker holds bytes used per tenant. It is safe for concurrent use.
type Tracker struct {
	cfg    Config
	src    Source
	limits Limits
	clk    clock.WithTicker
	log    *slog.Logger
	m      metrics

	refreshMu sync.Mutex // serializes Refresh; guards parts and lastFull
	parts     map[string]*partition
	lastFull  time.Time

	mu sync.Mutex // guards the fields below
	// measured is what the last refresh found per scope.
	measured map[scope.Scope]int64
	pending  map[scope.Scope]*pending
	ready    bool
}

type partition struct {
	rows, mutation, maxSeq uint64
	usage                  map[scope.Scope]int64
}

// pending is a scope's accepted writes not yet seen by a refresh.
type pending struct {
	chunks   []chunk // oldest first
	total    int64   // sum of chunks
	inflight int64   // reserved, not yet committed or cancelled
}

// chunk groups the writes of about one second, to keep memory small at
// thousands of writes a second.
type chunk struct {
	start  time.Time
	maxSeq uint64
	bytes  int64
}

type metrics struct {
	used          *prometheus.GaugeVec
	quota         *prometheus.GaugeVec
	refusals      *prometheus.CounterVec
	refreshErrors prometheus.Counter
	lastRefresh   prometheus.Gauge
	refreshTime   prometheus.Gauge
}

// New returns a tracker; call Refresh (or Run) before relying on it. Until
// the first refresh succeeds every write is allowed: usage is unknown, and
// refusing all writes because ClickHouse is slow to answer at start would
// be worse than a short overshoot.
func New(src Source, limits Limits, cfg Config, clk clock.WithTicker, reg prometheus.Registerer, log *slog.Logger) *Tracker {
	d := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.FullEvery <= 0 {
		cfg.FullEvery = d.FullEvery
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Tracker{cfg: cfg, src: src, limits: limits, clk: clk, log: log.With("component", "quota"),
		parts: map[string]*partition{}, measured: map[scope.Scope]int64{}, pending: map[scope.Scope]*pending{},
		m: metrics{
			used: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventpipe_tiers_storage_used_bytes",
				Help: "Bytes stored per tenant (clickhouse.RowBytes summed, plus accepted writes not yet in ClickHouse), at the last refresh."}, []string{"scope", "tier"}),
			quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventpipe_tiers_storage_quota_bytes",
				Help: "The storage quota of each tenant in eventpipe_tiers_storage_used_bytes whose tier has one (unlimited tiers have no series)."}, []string{"scope", "tier"}),
			refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_tiers_quota_refusals_total",
				Help: "Writes refused (403) because they would exceed the tenant's storage quota, by tier."}, []string{"tier"}),
			refreshErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_quota_refresh_errors_total",
				Help: "Failed usage refreshes (the previous figures stay in use)."}),
			lastRefresh: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_quota_last_refresh_timestamp_seconds",
				Help: "When usage was last measured from ClickHouse, Unix seconds."}),
			refreshTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_quota_refresh_duration_seconds",
				Help: "How long the last successful usage refresh took."}),
		}}
	if reg != nil {
		reg.MustRegister(t.m.used, t.m.quota, t.m.refusals, t.m.refreshErrors, t.m.lastRefresh, t.m.refreshTime)
	}
	return t
}

// Exceeded is the error for a write that would pass the quota.
type Exceeded struct {
	Limits   tiers.Limits
	Used     int64
	Incoming int64
}

func (e *Exceeded) Error() string {
	return e.Status(schema.GroupResource{Resource: "events"}, "").Error()
}

// Status is the 403 Forbidden the API returns for a write of resource gr
// named name.
func (e *Exceeded) Status(gr schema.GroupResource, name string) *apierrors.StatusError {
	return tiers.QuotaExceeded(gr, name, e.Limits, e.Used, e.Incoming)
}

// Usage is a tenant's storage figures.
type Usage struct {
	Limits tiers.Limits
	// Used is Measured plus Pending: what the quota is checked against.
	Used int64
	// Measured is what the last refresh found in ClickHouse.
	Measured int64
	// Pending is accepted (or reserved) writes ClickHouse did not have then.
	Pending int64
}

// Usage returns sc's current figures (for showing to the tenant).
func (t *Tracker) Usage(sc scope.Scope) Usage {
	lim := t.limits.For(sc)
	t.mu.Lock()
	defer t.mu.Unlock()
	u := Usage{Limits: lim, Measured: t.measured[sc]}
	if p := t.pending[sc]; p != nil {
		u.Pending = p.total + p.inflight
	}
	u.Used = u.Measured + u.Pending
	return u
}

// Scopes returns every scope with measured or pending bytes.
func (t *Tracker) Scopes() []scope.Scope {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[scope.Scope]bool{}
	for sc := range t.measured {
		seen[sc] = true
	}
	for sc := range t.pending {
		seen[sc] = true
	}
	out := make([]scope.Scope, 0, len(seen))
	for sc := range seen {
		out = append(out, sc)
	}
	return out
}

// Check reports whether sc may store incoming more bytes: nil, or an
// *Exceeded when used + incoming is above the quota (equal is allowed).
func (t *Tracker) Check(sc scope.Scope, incoming int64) error {
	lim := t.limits.For(sc)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.check(sc, lim, incoming)
}

// check is Check with t.mu held.
func (t *Tracker) check(sc scope.Scope, lim tiers.Limits, incoming int64) error {
	if lim.StorageQuota == tiers.Unlimited || !t.ready {
		return nil
	}
	used := t.measured[sc]
	if p := t.pending[sc]; p != nil {
		used += p.total + p.inflight
	}
	if used+incoming > lim.StorageQuota {
		t.m.refusals.WithLabelValues(lim.Tier).Inc()
		return &Exceeded{Limits: lim, Used: used, Incoming: incoming}
	}
	return nil
}

// Reservation is bytes held for a write between the quota check and the
// publish. Exactly one of Commit and Cancel must be called.
type Reservation struct {
	t     *Tracker
	sc    scope.Scope
	bytes int64
}

// Reserve checks like Check and, when the write may go ahead, holds its
// bytes so that concurrent writes of the same tenant cannot all pass the
// same last gap.
func (t *Tracker) Reserve(sc scope.Scope, bytes int64) (*Reservation, error) {
	lim := t.limits.For(sc)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check(sc, lim, bytes); err != nil {
		return nil, err
	}
	t.pendingOf(sc).inflight += bytes
	return &Reservation{t: t, sc: sc, bytes: bytes}, nil
}

// Commit records that the write is stored in the log at sequence seq; its
// bytes count until a refresh finds them in ClickHouse.
func (r *Reservation) Commit(seq uint64) {
	t := r.t
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pendingOf(r.sc)
	p.inflight -= r.bytes
	p.total += r.bytes
	if n := len(p.chunks); n > 0 && now.Sub(p.chunks[n-1].start) < time.Second {
		c := &p.chunks[n-1]
		c.bytes += r.bytes
		c.maxSeq = max(c.maxSeq, seq)
		return
	}
	p.chunks = append(p.chunks, chunk{start: now, maxSeq: seq, bytes: r.bytes})
}

// Cancel releases the bytes of a write that was not stored.
func (r *Reservation) Cancel() {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	r.t.pendingOf(r.sc).inflight -= r.bytes
}

func (t *Tracker) pendingOf(sc scope.Scope) *pending {
	p := t.pending[sc]
	if p == nil {
		p = &pending{}
		t.pending[sc] = p
	}
	return p
}

// Refresh measures ClickHouse and brings every tenant's figures up to date.
// On error the previous figures stay.
func (t *Tracker) Refresh(ctx context.Context) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	started := t.clk.Now()
	wall := time.Now()
	var committed uint64
	if t.cfg.Committed != nil {
		committed = t.cfg.Committed() // before reading: all at or below it is in every read
	}
	err := t.measure(ctx, started)
	if err != nil {
		t.m.refreshErrors.Inc()
		t.log.Warn("cannot measure storage usage; the previous figures stay", "err", err)
		return err
	}
	totals := map[scope.Scope]int64{}
	var counted uint64
	for _, p := range t.parts {
		counted = max(counted, p.maxSeq)
		for sc, b := range p.usage {
			totals[sc] += b
		}
	}
	if t.cfg.Committed == nil {
		committed = counted
	}

	t.mu.Lock()
	t.measured = totals
	t.ready = true
	for sc, p := range t.pending {
		i := 0
		for i < len(p.chunks) && p.chunks[i].maxSeq <= committed {
			p.total -= p.chunks[i].bytes
			i++
		}
		p.chunks = p.chunks[i:]
		if len(p.chunks) == 0 && p.inflight == 0 {
			delete(t.pending, sc)
		}
	}
	t.m.used.Reset()
	t.m.quota.Reset()
	for sc, b := range totals {
		if p := t.pending[sc]; p != nil {
			b += p.total
		}
		lim := t.limits.For(sc)
		t.m.used.WithLabelValues(sc.String(), lim.Tier).Set(float64(b))
		// Beside the usage, so that a dashboard divides the two series
		// of one tenant without knowing the tiers file.
		if lim.StorageQuota != tiers.Unlimited {
			t.m.quota.WithLabelValues(sc.String(), lim.Tier).Set(float64(lim.StorageQuota))
		}
	}
	t.mu.Unlock()

	t.m.lastRefresh.Set(float64(t.clk.Now().Unix()))
	t.m.refreshTime.Set(time.Since(wall).Seconds())
	return nil
}

// measure updates t.parts from the source; t.refreshMu is held.
func (t *Tracker) measure(ctx context.Context, now time.Time) error {
	parts, err := t.src.Partitions(ctx)
	if err != nil {
		return err
	}
	full := t.lastFull.IsZero() || now.Sub(t.lastFull) >= t.cfg.FullEvery
	seen := map[string]bool{}
	for _, p := range parts {
		seen[p.ID] = true
		c := t.parts[p.ID]
		switch {
		case c == nil || full || p.MutationVersion != c.mutation || p.Rows < c.rows:
			us, maxSeq, err := t.src.PartitionUsage(ctx, p.ID, 0)
			if err != nil {
				return err
			}
			c = &partition{rows: p.Rows, mutation: p.MutationVersion, maxSeq: maxSeq, usage: map[scope.Scope]int64{}}
			for _, u := range us {
				c.usage[u.Scope] += int64(u.Bytes)
			}
			t.parts[p.ID] = c
		case p.Rows == c.rows:
			// Unchanged (or merged without folding anything).
		default:
			us, maxSeq, err := t.src.PartitionUsage(ctx, p.ID, c.maxSeq)
			if err != nil {
				return err
			}
			for _, u := range us {
				c.usage[u.Scope] += int64(u.Bytes)
			}
			c.rows, c.maxSeq = p.Rows, max(c.maxSeq, maxSeq)
		}
	}
	for id := range t.parts {
		if !seen[id] {
			delete(t.parts, id) // dropped by retention
		}
	}
	if full {
		t.lastFull = now
	}
	return nil
}

// Run refreshes at once and then every Interval until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	_ = t.Refresh(ctx) // logged and counted inside
	tick := t.clk.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			_ = t.Refresh(ctx)
		}
	}
}

// String describes u for people.
func (u Usage) String() string {
	return fmt.Sprintf("%s (tier %s): %d of %s bytes used", u.Limits.Scope, u.Limits.Tier, u.Used, tiers.FormatBytes(u.Limits.StorageQuota))
}
