// Package retention removes each tenant's events and audit records once
// they are past its tier's retention. Each table is handled alike, one
// after the other: the events table by each state's last observation, the
// audit_records table by each record's request time (see
// clickhouse.Store.RetentionTables); what follows says it for events.
//
// The line is on the last observation (last_ts): a row goes when the state
// it holds was last observed longer ago than the tenant's retention. The
// table keeps every state of an event, so an event that keeps recurring
// loses its old states while its latest one stays; reads are unaffected,
// because they pick an event's latest state among the states inside their
// window, and every window is within the retention (the configuration
// refuses a query window longer than the retention).
//
// Each run:
//
//  1. drops whole day partitions whose newest row is past the longest
//     retention of any tier or tenant (the global maximum): cheap, and
//     every tenant's line is at or after it;
//  2. finds the tenants with rows past their own line and deletes exactly
//     those rows with one ALTER TABLE … DELETE for all of them (a mutation
//     rewrites the parts it touches, so one per run rather than one per
//     tenant), then waits for the mutation to finish (18.16 has no
//     synchronous mutations; it polls system.mutations). A run does not
//     start a new mutation while an earlier one is still pending.
//
// In dry-run mode it only logs what it would drop and delete, with row
// counts per tenant.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tiers"
)

// Store is what the worker needs from ClickHouse: the tables retention
// applies to (events, audit records); *clickhouse.Store is one.
type Store interface {
	RetentionTables() []*chstore.RetentionTable
}

// Table is what the worker needs from one table; *clickhouse.RetentionTable
// is one.
type Table interface {
	Name() string
	Partitions(ctx context.Context) ([]chstore.Partition, error)
	DropPartition(ctx context.Context, id string) error
	OldestByScope(ctx context.Context, before time.Time) (map[scope.Scope]time.Time, error)
	CountPastCutoffs(ctx context.Context, cs []chstore.Cutoff) (map[scope.Scope]uint64, error)
	DeletePastCutoffs(ctx context.Context, cs []chstore.Cutoff) error
	PendingMutations(ctx context.Context) (uint64, error)
	WaitMutations(ctx context.Context, interval time.Duration) error
}

// Configs hands out the tiers configuration in force; *tiers.Resolver is one.
type Configs interface {
	Config() *tiers.Config
}

// Config tunes the worker.
type Config struct {
	// Interval is the time between runs.
	Interval time.Duration
	// DryRun logs what would be removed and removes nothing.
	DryRun bool
	// MutationTimeout bounds the wait for a DELETE mutation to finish. A
	// mutation still running then is left to finish on its own; the next
	// run waits for it before starting another.
	MutationTimeout time.Duration
	// MutationPoll is how often system.mutations is read while waiting.
	MutationPoll time.Duration
	// TenantsPerMutation caps the tenants one DELETE names (statement size).
	TenantsPerMutation int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Interval: time.Hour, MutationTimeout: 30 * time.Minute, MutationPoll: time.Second, TenantsPerMutation: 500}
}

// Worker applies retention. Create it with New; call Run once, or RunOnce.
type Worker struct {
	cfg   Config
	store Store
	confs Configs
	clk   clock.WithTicker
	log   *slog.Logger
	m     metrics
}

type metrics struct {
	rowsDeleted       *prometheus.CounterVec
	partitionsDropped prometheus.Counter
	lastRun           prometheus.Gauge
	lastSuccess       prometheus.Gauge
	errors            prometheus.Counter
	wouldDelete       prometheus.Gauge
}

// New returns a worker.
func New(store Store, confs Configs, cfg Config, clk clock.WithTicker, reg prometheus.Registerer, log *slog.Logger) *Worker {
	d := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.MutationTimeout <= 0 {
		cfg.MutationTimeout = d.MutationTimeout
	}
	if cfg.MutationPoll <= 0 {
		cfg.MutationPoll = d.MutationPoll
	}
	if cfg.TenantsPerMutation <= 0 {
		cfg.TenantsPerMutation = d.TenantsPerMutation
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Worker{cfg: cfg, store: store, confs: confs, clk: clk, log: log.With("component", "retention", "dryRun", cfg.DryRun),
		m: metrics{
			rowsDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_tiers_retention_rows_deleted_total",
				Help: "Rows (event states, audit records) removed for retention, by how: partition (a whole day dropped) or delete (per-tenant mutation)."}, []string{"how"}),
			partitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_retention_partitions_dropped_total",
				Help: "Day partitions dropped because every row in them is past the longest retention."}),
			lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_retention_last_run_timestamp_seconds",
				Help: "When the retention worker last ran, Unix seconds."}),
			lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_retention_last_success_timestamp_seconds",
				Help: "When a retention run last finished without error, Unix seconds."}),
			errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_retention_errors_total",
				Help: "Retention runs that failed (the next run tries again)."}),
			wouldDelete: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_retention_dry_run_rows",
				Help: "Rows the last dry run would have removed (partitions and deletes)."}),
		}}
	if reg != nil {
		reg.MustRegister(w.m.rowsDeleted, w.m.partitionsDropped, w.m.lastRun, w.m.lastSuccess, w.m.errors, w.m.wouldDelete)
	}
	return w
}

// Report says what a run removed (or, dry, would remove).
type Report struct {
	At     time.Time
	DryRun bool
	// Tables holds what was done to each table, by its name ("events",
	// "audit_records").
	Tables map[string]TableReport
}

// TableReport says what a run removed from one table.
type TableReport struct {
	// Partitions lists the day partitions dropped, with their rows.
	Partitions map[string]uint64
	// Deleted counts the rows deleted per tenant by the mutation.
	Deleted map[scope.Scope]uint64
	// Skipped is set when per-tenant deletes waited for an earlier
	// mutation that is still running.
	Skipped bool
}

// RunOnce applies retention as of the clock's now.
func (w *Worker) RunOnce(ctx context.Context) (Report, error) {
	now := w.clk.Now()
	w.m.lastRun.Set(float64(now.Unix()))
	r, err := w.run(ctx, now)
	if err != nil {
		w.m.errors.Inc()
		w.log.Error("retention run failed", "err", err)
		return r, err
	}
	w.m.lastSuccess.Set(float64(w.clk.Now().Unix()))
	return r, nil
}

func (w *Worker) run(ctx context.Context, now time.Time) (Report, error) {
	c := w.confs.Config()
	r := Report{At: now, DryRun: w.cfg.DryRun, Tables: map[string]TableReport{}}
	// One table's failure does not keep the others from their retention.
	var errs []error
	var would uint64
	for _, t := range w.store.RetentionTables() {
		tr, n, err := w.runTable(ctx, t, c, now)
		r.Tables[t.Name()] = tr
		would += n
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
		}
	}
	if w.cfg.DryRun {
		w.m.wouldDelete.Set(float64(would))
	}
	return r, errors.Join(errs...)
}

// runTable applies retention to one table.
func (w *Worker) runTable(ctx context.Context, t Table, c *tiers.Config, now time.Time) (r TableReport, would uint64, err error) {
	log := w.log.With("table", t.Name())
	r = TableReport{Partitions: map[string]uint64{}, Deleted: map[scope.Scope]uint64{}}

	// 1. Whole days past the longest retention. The time column holds
	// whole seconds, so every row of a partition is before MaxTime+1s.
	global := now.Add(-c.MaxRetention())
	parts, err := t.Partitions(ctx)
	if err != nil {
		return r, would, err
	}
	for _, p := range parts {
		if p.MaxTime.Add(time.Second).After(global) {
			continue
		}
		if p.Rows == 0 {
			// Parts a DELETE emptied (their max_time reads as 1970):
			// nothing to report. Drop them only when the day itself is well
			// past the line (two days cover any server time zone), so that
			// a late write into the day cannot be lost.
			day, err := time.Parse("20060102", p.ID)
			if err == nil && day.Add(2*24*time.Hour).Before(global) && !w.cfg.DryRun {
				if err := t.DropPartition(ctx, p.ID); err != nil {
					return r, would, err
				}
			}
			continue
		}
		r.Partitions[p.ID] = p.Rows
		if w.cfg.DryRun {
			would += p.Rows
			log.Info("retention dry run: would drop partition", "partition", p.ID, "rows", p.Rows, "newest", p.MaxTime, "line", global)
			continue
		}
		log.Info("retention: dropping partition", "partition", p.ID, "rows", p.Rows, "newest", p.MaxTime, "line", global)
		if err := t.DropPartition(ctx, p.ID); err != nil {
			return r, would, err
		}
		w.m.partitionsDropped.Inc()
		w.m.rowsDeleted.WithLabelValues("partition").Add(float64(p.Rows))
	}

	// 2. Per tenant, below the global line.
	if !w.cfg.DryRun {
		n, err := t.PendingMutations(ctx)
		if err != nil {
			return r, would, err
		}
		if n > 0 {
			log.Warn("an earlier mutation is still running; per-tenant deletes wait for the next run", "pending", n)
			r.Skipped = true
			return r, would, nil
		}
	}
	oldest, err := t.OldestByScope(ctx, now.Add(-c.MinRetention()))
	if err != nil {
		return r, would, err
	}
	var cutoffs []chstore.Cutoff
	for sc, at := range oldest {
		line := now.Add(-c.For(sc).Retention)
		if at.Before(line) {
			cutoffs = append(cutoffs, chstore.Cutoff{Scope: sc, Before: line})
		}
	}
	slices.SortFunc(cutoffs, func(a, b chstore.Cutoff) int { return strings.Compare(a.Scope.String(), b.Scope.String()) })
	counts, err := t.CountPastCutoffs(ctx, cutoffs)
	if err != nil {
		return r, would, err
	}
	var todo []chstore.Cutoff
	for _, cut := range cutoffs {
		n := counts[cut.Scope]
		if n == 0 {
			continue // the oldest row was inside its last second
		}
		todo = append(todo, cut)
		r.Deleted[cut.Scope] = n
		lim := c.For(cut.Scope)
		msg := "retention: deleting rows"
		if w.cfg.DryRun {
			msg = "retention dry run: would delete rows"
			would += n
		}
		log.Info(msg, "scope", cut.Scope.String(), "tier", lim.Tier, "retention", tiers.FormatDuration(lim.Retention),
			"observedBefore", cut.Before, "rows", n)
	}
	if w.cfg.DryRun {
		log.Info("retention dry run: done", "partitions", len(r.Partitions), "tenants", len(todo), "rows", would)
		return r, would, nil
	}
	if len(todo) == 0 {
		return r, would, nil
	}
	for i := 0; i < len(todo); i += w.cfg.TenantsPerMutation {
		if err := t.DeletePastCutoffs(ctx, todo[i:min(i+w.cfg.TenantsPerMutation, len(todo))]); err != nil {
			return r, would, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, w.cfg.MutationTimeout)
	defer cancel()
	if err := t.WaitMutations(wctx, w.cfg.MutationPoll); err != nil {
		return r, would, fmt.Errorf("retention delete started but did not finish: %w", err)
	}
	var total uint64
	for _, n := range r.Deleted {
		total += n
	}
	w.m.rowsDeleted.WithLabelValues("delete").Add(float64(total))
	log.Info("retention: done", "partitions", len(r.Partitions), "tenants", len(todo), "rows", total)
	return r, would, nil
}

// Run runs at once and then every Interval until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	_, _ = w.RunOnce(ctx) // logged and counted inside
	t := w.clk.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			_, _ = w.RunOnce(ctx)
		}
	}
}

var _ Table = (*chstore.RetentionTable)(nil)
