package roles

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/admission"
	"github.com/eventpipe/eventpipe/internal/tiers/quota"
	"github.com/eventpipe/eventpipe/internal/tiers/ratelimit"
)

// TiersOptions configure the tiers the API server enforces.
type TiersOptions struct {
	// Config is the tiers file (docs/tiers.md); empty means the built-in
	// tiers with every tenant on the default tier.
	Config string
	// Replicas is how many API servers share the rate limits.
	Replicas int
	// QuotaRefresh is how often storage usage is measured from ClickHouse.
	// With several replicas it bounds how long one replica takes to see
	// what the others accepted (docs/apiserver-replicas.md).
	QuotaRefresh time.Duration
}

// DefaultTiersOptions returns the documented defaults.
func DefaultTiersOptions() TiersOptions {
	return TiersOptions{Replicas: 1, QuotaRefresh: quota.DefaultConfig().Interval}
}

// AddFlags registers the options on fs.
func (o *TiersOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Config, "tiers.config", o.Config,
		"tiers file: tiers, tenant assignments and overrides (docs/tiers.md); re-read every 10s, a bad file keeps the old one in force. "+
			"Empty: the built-in Free, Pro and Enterprise tiers, every tenant on Free")
	fs.IntVar(&o.Replicas, "tiers.replicas", o.Replicas,
		"how many API server replicas share the rate limits (each takes a share of a tenant's minute at a time)")
	fs.DurationVar(&o.QuotaRefresh, "tiers.quota-refresh", o.QuotaRefresh,
		"how often each tenant's stored bytes are measured from ClickHouse for the storage quota; with several replicas, "+
			"how long one replica may take to count what the others accepted (docs/apiserver-replicas.md)")
}

// Validate returns every problem with o.
func (o *TiersOptions) Validate() []error {
	var errs []error
	if o.Replicas < 1 {
		errs = append(errs, fmt.Errorf("--tiers.replicas must be at least 1, got %d", o.Replicas))
	}
	if o.QuotaRefresh < time.Second {
		errs = append(errs, fmt.Errorf("--tiers.quota-refresh must be at least 1s (each refresh reads ClickHouse), got %s", o.QuotaRefresh))
	}
	return errs
}

// loadTiers returns a resolver with the tiers of file and, with a file, the
// watcher that keeps it current (run it with Run); a bad file is an error
// naming its lines.
func loadTiers(file string, reg prometheus.Registerer, log *slog.Logger) (*tiers.Resolver, *tiers.Watcher, error) {
	res := tiers.NewResolver(tiers.Default())
	if file == "" {
		return res, nil, nil
	}
	w, err := tiers.NewWatcher(file, res, tiers.WatcherOptions{Log: log, Registerer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("--tiers.config: %w", err)
	}
	return res, w, nil
}

// tiersAdmission returns the process's tier enforcement, built once by
// newAdmission: every front door in a process (dev mode runs the API server
// and the etcd front together) counts a tenant's writes against the same
// limits and quota, with one tiers file watcher and one usage refresh. The
// background work goes to the first caller, whose role runs it; the
// tenants resolver is the first caller's too (the etcd front's requests
// carry no user, so any resolver takes them as the tenant's own).
func (c *Conns) tiersAdmission(ctx context.Context, o TiersOptions, committed func() uint64, tenants *tenancy.Resolver,
	reg prometheus.Registerer, log *slog.Logger) (*admission.Policy, []func(context.Context), error) {
	first := false
	c.tiersOnce.Do(func() {
		first = true
		c.tiers, c.tiersBackground, c.tiersErr = newAdmission(ctx, c, o, committed, tenants, reg, log)
	})
	if !first {
		return c.tiers, nil, c.tiersErr
	}
	return c.tiers, c.tiersBackground, c.tiersErr
}

// newAdmission builds the API server's tier enforcement: the resolver (and
// its file watcher), the rate limiter sharing counts through JetStream, and
// the quota tracker measuring usage in the store at the committed
// watermark. The returned functions are its background work (config
// reloads, usage refreshes), to run until the server stops.
func newAdmission(ctx context.Context, c *Conns, o TiersOptions, committed func() uint64, tenants *tenancy.Resolver,
	reg prometheus.Registerer, log *slog.Logger) (*admission.Policy, []func(context.Context), error) {
	res, watcher, err := loadTiers(o.Config, reg, log)
	if err != nil {
		return nil, nil, err
	}
	rc := ratelimit.DefaultConfig()
	rc.Replicas = o.Replicas
	lim, err := ratelimit.New(ctx, c.JS, res, rc, clock.RealClock{}, reg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("rate limiter: %w", err)
	}
	qc := quota.DefaultConfig()
	qc.Committed = committed
	qc.Interval = o.QuotaRefresh
	q := quota.New(c.Store, res, qc, clock.RealClock{}, reg, log)
	run := []func(context.Context){q.Run}
	if watcher != nil {
		run = append(run, watcher.Run)
	}
	return admission.New(res, lim, q, tenants), run, nil
}
