package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/tenantusage"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/quota"
	"github.com/eventpipe/eventpipe/internal/tiers/ratelimit"
)

func init() {
	activityResources = append(activityResources, addTenantUsages)
}

// addTenantUsages serves tenantusages when tiers are enforced: each tenant
// reads its own tier and usage.
func addTenantUsages(c CompletedConfig, storage map[string]rest.Storage) error {
	if t := c.backends.Tiers; t != nil {
		storage["tenantusages"] = tenantusage.NewREST(c.scopes, t.Quota, t.Resolver)
	}
	return nil
}

// TiersOptions configure the tiers every part of eventpipe enforces.
type TiersOptions struct {
	// Config is the tiers file (docs/tiers.md); empty means the built-in
	// tiers with every tenant on the default tier.
	Config string
	// Replicas is how many API servers share the rate limits.
	Replicas int
}

// AddFlags registers the options on fs.
func (o *TiersOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Config, "tiers.config", o.Config,
		"tiers file: tiers, tenant assignments and overrides (docs/tiers.md); re-read every 10s, a bad file keeps the old one in force. "+
			"Empty: the built-in Free, Pro and Enterprise tiers, every tenant on Free")
	fs.IntVar(&o.Replicas, "tiers.replicas", o.Replicas,
		"how many API server replicas share the rate limits (each takes a share of a tenant's minute at a time)")
}

// Validate returns every problem with o.
func (o *TiersOptions) Validate() []error {
	if o.Replicas < 1 {
		return []error{fmt.Errorf("--tiers.replicas must be at least 1, got %d", o.Replicas)}
	}
	return nil
}

// LoadTiers returns a resolver with the configured tiers and, with a file,
// the watcher that keeps it current (run it with Run); a bad file is an
// error naming its lines.
func (o *TiersOptions) LoadTiers(reg prometheus.Registerer, log *slog.Logger) (*tiers.Resolver, *tiers.Watcher, error) {
	if o.Config == "" {
		return tiers.NewResolver(tiers.Default()), nil, nil
	}
	res := tiers.NewResolver(tiers.Default())
	w, err := tiers.NewWatcher(o.Config, res, tiers.WatcherOptions{Log: log, Registerer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("--tiers.config: %w", err)
	}
	return res, w, nil
}

// Tiers enforces a tenant's tier on the API server: rate limits and the
// storage quota on writes, the query window on EventQuery.
type Tiers struct {
	Resolver *tiers.Resolver
	Limiter  *ratelimit.Limiter
	Quota    *quota.Tracker
	tenants  *tenancy.Resolver
	run      []func(context.Context)
}

// NewTiers builds the API server's tier enforcement: the resolver (and its
// file watcher), the rate limiter sharing counts through JetStream, and the
// quota tracker measuring usage in the store at the committed watermark.
// Start its background work with Run.
func (o *TiersOptions) NewTiers(ctx context.Context, js jetstream.JetStream, store *chstore.Store, committed func() uint64,
	reg prometheus.Registerer, log *slog.Logger) (*Tiers, error) {
	res, watcher, err := o.LoadTiers(reg, log)
	if err != nil {
		return nil, err
	}
	rc := ratelimit.DefaultConfig()
	rc.Replicas = o.Replicas
	lim, err := ratelimit.New(ctx, js, res, rc, clock.RealClock{}, reg, log)
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	qc := quota.DefaultConfig()
	qc.Committed = committed
	q := quota.New(store, res, qc, clock.RealClock{}, reg, log)
	t := &Tiers{Resolver: res, Limiter: lim, Quota: q, run: []func(context.Context){q.Run}}
	if watcher != nil {
		t.run = append(t.run, watcher.Run)
	}
	return t, nil
}

// Run runs the background work (config reloads, usage refreshes) until ctx
// ends.
func (t *Tiers) Run(ctx context.Context) {
	for _, f := range t.run {
		go f(ctx)
	}
}

// Admit implements event.Admission for one state; see AdmitBatch.
func (t *Tiers) Admit(ctx context.Context, sc scope.Scope, rec *eventlog.Record) (func(uint64, error), error) {
	return t.AdmitBatch(ctx, sc, []*eventlog.Record{rec})
}

// AdmitBatch decides writes of recs into sc as a whole (the webhook's
// batches; the Events API's single states). Writes into the Platform scope
// are never limited. A tenant caller's writes count against its rate
// limit; platform callers writing into a tenant's scope (the exporter, the
// dev generator) are the platform's own pipeline and are not rate limited,
// but every write into a tenant's scope counts against its storage quota.
func (t *Tiers) AdmitBatch(ctx context.Context, sc scope.Scope, recs []*eventlog.Record) (func(uint64, error), error) {
	if sc.IsPlatform() || len(recs) == 0 {
		return func(uint64, error) {}, nil
	}
	if c, err := t.tenants.FromContext(ctx); err != nil || !c.Platform {
		d := t.Limiter.AllowN(ctx, sc, int64(len(recs)))
		switch d.Verdict {
		case ratelimit.Deny:
			return nil, d.Err()
		case ratelimit.AllowWithWarning:
			warning.AddWarning(ctx, "", d.Warning)
		}
	}
	var n int64
	for _, rec := range recs {
		b, err := quota.EventBytes(rec)
		if err != nil {
			return nil, err
		}
		n += b
	}
	r, err := t.Quota.Reserve(sc, n)
	var ex *quota.Exceeded
	if errors.As(err, &ex) {
		var gr schema.GroupResource
		if ri, ok := genericapirequest.RequestInfoFrom(ctx); ok {
			gr = schema.GroupResource{Group: ri.APIGroup, Resource: ri.Resource}
		}
		name := ""
		if len(recs) == 1 {
			name = recs[0].Event.Name
		}
		return nil, ex.Status(gr, name)
	}
	if err != nil {
		return nil, err
	}
	return func(seq uint64, err error) {
		if err != nil {
			r.Cancel()
			return
		}
		r.Commit(seq)
	}, nil
}

// QueryWindow gives EventQuery and EventFacetQuery the caller's window: its
// tier's query access, or for platform callers the longest retention.
func (t *Tiers) QueryWindow(ctx context.Context) (time.Duration, string, error) {
	c, err := t.tenants.FromContext(ctx)
	if err != nil {
		return 0, "", err
	}
	l := t.Resolver.For(c.Scope)
	if l.QueryWindow == tiers.Unlimited {
		return t.Resolver.Config().MaxRetention(), l.Tier, nil
	}
	return l.QueryWindow, l.Tier, nil
}
