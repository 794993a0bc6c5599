package roles

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
)

// APIServerOptions configure the API server role.
type APIServerOptions struct {
	Server *apiserver.Options
	Tiers  TiersOptions
	// Activities serves the activity resources (activities, policies,
	// previews), creating the ACTIVITIES stream if absent. The activity
	// processor itself is a role of its own.
	Activities bool
}

// NewAPIServerOptions returns the documented defaults.
func NewAPIServerOptions() APIServerOptions {
	return APIServerOptions{Server: apiserver.NewOptions(), Tiers: DefaultTiersOptions(), Activities: true}
}

// AddFlags registers the options on fs.
func (o *APIServerOptions) AddFlags(fs *pflag.FlagSet) {
	o.Server.AddFlags(fs)
	o.Tiers.AddFlags(fs)
}

// Complete fills in what the options take from the environment.
func (o *APIServerOptions) Complete() { o.Server.Complete() }

// Validate returns every problem with o.
func (o *APIServerOptions) Validate() []error {
	return append(o.Server.Validate(), o.Tiers.Validate()...)
}

// APIServer is the API server role: the Kubernetes Events API, EventQuery,
// activities, tenant usage and the webhook receiver.
type APIServer struct {
	c   *Conns
	log *slog.Logger
	srv *apiserver.Server
	// background is the tiers' work, which runs while the server does.
	background []func(context.Context)
}

// NewAPIServer builds the API server on c, whose store must be open. It
// reads the committed watermark the writer publishes in the state bucket,
// whether or not the writer runs in this process. reg receives the tiers'
// metrics: `eventpipe apiserver` passes Kubernetes' registry, which the
// server itself serves on /metrics; dev mode, which may start several
// servers in one process, passes its own.
func NewAPIServer(ctx context.Context, c *Conns, o APIServerOptions, reg prometheus.Registerer, log *slog.Logger) (*APIServer, error) {
	if err := joinErrors(o.Validate()); err != nil {
		return nil, err
	}
	fl, err := c.frontDoorLog(ctx, log)
	if err != nil {
		return nil, err
	}
	if err := tailwatch.RegisterMetrics(reg); err != nil {
		return nil, err
	}
	tiers, background, err := c.tiersAdmission(ctx, o.Tiers, fl.watermark.Load, o.Server.Tenants(), reg, log)
	if err != nil {
		return nil, err
	}
	b := apiserver.Backends{
		Log:   fl.log,
		Index: event.ClickHouseIndex{Store: c.Store}, History: c.Store, Watermark: fl.watermark, Tiers: tiers,
		AuditLog: audit.NewPublisher(c.JS), LogReady: c.NATSReady,
	}
	if o.Activities {
		if b.Activity, err = activityBackends(ctx, c); err != nil {
			return nil, err
		}
	}
	auditWM, err := audit.WatchWatermark(ctx, c.JS)
	if err != nil {
		return nil, err
	}
	b.Audit = &apiserver.AuditBackends{Index: c.Store, Watermark: auditWM}
	cfg, err := o.Server.Config(b)
	if err != nil {
		return nil, err
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		return nil, err
	}
	return &APIServer{c: c, log: log, srv: srv, background: background}, nil
}

// Run serves until ctx ends, or until the EVENTS stream is recreated under
// it (eventlog.ErrStreamRecreated).
func (a *APIServer) Run(ctx context.Context) error {
	return a.c.runGuarded(ctx, a.log, func(ctx context.Context) error {
		for _, f := range a.background {
			go f(ctx)
		}
		return a.srv.Run(ctx)
	})
}

// activityBackends opens what the API server reads and writes for the
// activity resources: the ACTIVITIES stream (created if absent), the
// policy bucket, and the indexer's watermark.
func activityBackends(ctx context.Context, c *Conns) (*apiserver.ActivityBackends, error) {
	cfg := activity.DefaultConfig()
	if err := activity.Ensure(ctx, c.JS, cfg.Stream); err != nil {
		return nil, err
	}
	policies, err := activity.NewPolicyStore(ctx, c.JS)
	if err != nil {
		return nil, err
	}
	reader, err := activity.NewReader(ctx, c.JS)
	if err != nil {
		return nil, err
	}
	wm, err := activity.WatchWatermark(ctx, c.JS)
	if err != nil {
		return nil, err
	}
	return &apiserver.ActivityBackends{Log: reader, Index: c.Store, Watermark: wm, Policies: policies}, nil
}
