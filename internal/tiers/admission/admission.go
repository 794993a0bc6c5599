// Package admission decides, per request, whether a write into a tenant's
// scope may go ahead under the tenant's tier (rate limit and storage quota),
// and how far back the tenant's history queries may look. The API server's
// Events API, its webhook receiver and EventQuery consult one Policy.
package admission

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/warning"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/quota"
	"github.com/eventpipe/eventpipe/internal/tiers/ratelimit"
)

// Policy enforces a tenant's tier: rate limits and the storage quota on
// writes, the query window on history queries. Its methods are safe for
// concurrent use; the limiter, tracker and resolver it is built from carry
// their own background work, which whoever built them runs.
type Policy struct {
	// Resolver gives each tenant its tier's limits.
	Resolver *tiers.Resolver
	// Limiter counts tenant callers' writes against their rate limits.
	Limiter *ratelimit.Limiter
	// Quota counts every write into a tenant's scope against its storage
	// quota.
	Quota   *quota.Tracker
	tenants *tenancy.Resolver
}

// New returns a Policy over the given parts; tenants tells platform callers
// from tenant callers, with the same rules as the API server's authorizer.
func New(res *tiers.Resolver, lim *ratelimit.Limiter, q *quota.Tracker, tenants *tenancy.Resolver) *Policy {
	return &Policy{Resolver: res, Limiter: lim, Quota: q, tenants: tenants}
}

// Admit implements event.Admission for one state; see AdmitBatch.
func (p *Policy) Admit(ctx context.Context, sc scope.Scope, rec *eventlog.Record) (func(uint64, error), error) {
	return p.AdmitBatch(ctx, sc, []*eventlog.Record{rec})
}

// AdmitBatch decides writes of recs into sc as a whole (the webhook's
// batches; the Events API's single states). Writes into the Platform scope
// are never limited. A tenant caller's writes count against its rate
// limit; platform callers writing into a tenant's scope (the exporter, the
// dev generator) are the platform's own pipeline and are not rate limited,
// but every write into a tenant's scope counts against its storage quota.
func (p *Policy) AdmitBatch(ctx context.Context, sc scope.Scope, recs []*eventlog.Record) (func(uint64, error), error) {
	if sc.IsPlatform() || len(recs) == 0 {
		return func(uint64, error) {}, nil
	}
	if c, err := p.tenants.FromContext(ctx); err != nil || !c.Platform {
		d := p.Limiter.AllowN(ctx, sc, int64(len(recs)))
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
	r, err := p.Quota.Reserve(sc, n)
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
func (p *Policy) QueryWindow(ctx context.Context) (time.Duration, string, error) {
	c, err := p.tenants.FromContext(ctx)
	if err != nil {
		return 0, "", err
	}
	l := p.Resolver.For(c.Scope)
	if l.QueryWindow == tiers.Unlimited {
		return p.Resolver.Config().MaxRetention(), l.Tier, nil
	}
	return l.QueryWindow, l.Tier, nil
}
