package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/ratelimit"
	"github.com/eventpipe/eventpipe/internal/tiers/tierstest"
)

var (
	alpha = tierstest.Alpha
	acme  = scope.Scope{Type: scope.TypeOrganization, Name: "acme"}
	// start is 10 s into a minute.
	start = time.Date(2026, 11, 25, 10, 0, 10, 0, time.UTC)
)

func newLimiter(t testing.TB, srv *natstest.Server, res ratelimit.Limits, clk *clocktesting.FakeClock, replicas int, reg prometheus.Registerer) *ratelimit.Limiter {
	t.Helper()
	cfg := ratelimit.DefaultConfig()
	cfg.Replicas = replicas
	var l *ratelimit.Limiter
	var err error
	if srv == nil {
		l, err = ratelimit.New(context.Background(), nil, res, cfg, clk, reg, nil)
	} else {
		l, err = ratelimit.New(context.Background(), srv.JS, res, cfg, clk, reg, nil)
	}
	require.NoError(t, err)
	return l
}

// TestSoftAndHardAtTheRightCounts: Free is 100 soft, 500 hard. Writes 1–100
// pass, 101–500 pass with a warning, 501 on are refused with Retry-After
// until the minute ends; the next minute starts again.
func TestSoftAndHardAtTheRightCounts(t *testing.T) {
	srv := natstest.ForTest(t)
	clk := clocktesting.NewFakeClock(start)
	reg := prometheus.NewPedanticRegistry()
	l := newLimiter(t, srv, tiers.NewResolver(nil), clk, 1, reg)
	ctx := context.Background()
	for i := int64(1); i <= 500; i++ {
		d := l.Allow(ctx, alpha)
		want := ratelimit.Allow
		if i > 100 {
			want = ratelimit.AllowWithWarning
		}
		require.Equal(t, want, d.Verdict, "write %d", i)
		require.Equal(t, i, d.Count)
		if i == 101 {
			require.Equal(t, "Project/alpha (tier Free) wrote 101 events this minute, above the soft rate limit of 100/min; "+
				"writes above the hard limit of 500/min are refused until the minute ends", d.Warning)
		}
	}
	d := l.Allow(ctx, alpha)
	require.Equal(t, ratelimit.Deny, d.Verdict, "write 501")
	require.Equal(t, 50*time.Second, d.RetryAfter)
	err := d.Err()
	require.True(t, apierrors.IsTooManyRequests(err))
	require.EqualValues(t, 50, err.(apierrors.APIStatus).Status().Details.RetryAfterSeconds)
	require.Equal(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict, "still refused")
	require.EqualValues(t, 100, testutil.ToFloat64(l.DecisionsForTest("Free", "allow")))
	require.EqualValues(t, 400, testutil.ToFloat64(l.DecisionsForTest("Free", "warn")))
	require.EqualValues(t, 2, testutil.ToFloat64(l.DecisionsForTest("Free", "deny")))

	// Another tenant is not affected.
	require.Equal(t, ratelimit.Allow, l.Allow(ctx, scope.Scope{Type: scope.TypeProject, Name: "beta"}).Verdict)

	clk.Step(49 * time.Second) // 10:00:59
	require.Equal(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict)
	clk.Step(time.Second) // 10:01:00, a new minute
	d = l.Allow(ctx, alpha)
	require.Equal(t, ratelimit.Allow, d.Verdict)
	require.EqualValues(t, 1, d.Count)

	// Unlimited: Enterprise and the platform, with no bucket traffic.
	ent := newLimiter(t, srv, tierstest.Resolver(t, "tenants:\n  Organization/acme: Enterprise\n"), clk, 1, nil)
	for range 10_000 {
		require.Equal(t, ratelimit.Allow, ent.Allow(ctx, acme).Verdict)
		require.Equal(t, ratelimit.Allow, ent.Allow(ctx, scope.Platform).Verdict)
	}
}

// TestBatches: a batch is decided as a whole.
func TestBatches(t *testing.T) {
	srv := natstest.ForTest(t)
	clk := clocktesting.NewFakeClock(start)
	l := newLimiter(t, srv, tiers.NewResolver(nil), clk, 1, nil)
	ctx := context.Background()
	require.Equal(t, ratelimit.Allow, l.AllowN(ctx, alpha, 100).Verdict)
	d := l.AllowN(ctx, alpha, 300)
	require.Equal(t, ratelimit.AllowWithWarning, d.Verdict)
	require.EqualValues(t, 400, d.Count)
	require.Equal(t, ratelimit.Deny, l.AllowN(ctx, alpha, 101).Verdict, "401–501 would pass the hard limit")
	d = l.AllowN(ctx, alpha, 100)
	require.Equal(t, ratelimit.AllowWithWarning, d.Verdict, "401–500 fit exactly")
	require.EqualValues(t, 500, d.Count)
	require.Equal(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict)
}

// TestSharedAcrossReplicas: three limiters on one bucket, hammered
// concurrently, never accept more than the hard limit in total, accept
// nearly all of it, and refuse everywhere once it is spent.
func TestSharedAcrossReplicas(t *testing.T) {
	srv := natstest.ForTest(t)
	clk := clocktesting.NewFakeClock(start)
	res := tiers.NewResolver(nil)
	const replicas = 3
	var ls []*ratelimit.Limiter
	for range replicas {
		ls = append(ls, newLimiter(t, srv, res, clk, replicas, nil))
	}
	var accepted, warned atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[i%replicas]
			for range 300 {
				d := l.Allow(context.Background(), alpha)
				if d.Verdict != ratelimit.Deny {
					accepted.Add(1)
				}
				if d.Verdict == ratelimit.AllowWithWarning {
					warned.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("accepted %d of 1800 (hard 500), %d with a warning", accepted.Load(), warned.Load())
	require.LessOrEqual(t, accepted.Load(), int64(500), "the hard limit holds across replicas")
	// Stranded tokens: at most the unspent leases of the other replicas,
	// which shrink to single tokens near the limit.
	require.GreaterOrEqual(t, accepted.Load(), int64(500-64*(replicas-1)))
	require.GreaterOrEqual(t, warned.Load(), accepted.Load()-100, "no more than 100 writes without a warning")
	for _, l := range ls {
		// Spend what is stranded, then every replica refuses.
		for l.Allow(context.Background(), alpha).Verdict != ratelimit.Deny {
			accepted.Add(1)
		}
	}
	require.EqualValues(t, 500, accepted.Load(), "once the stranded tokens are spent, exactly the hard limit")
}

// TestTierChangeMidMinute: a new configuration applies to the next
// decision, even with tokens already leased.
func TestTierChangeMidMinute(t *testing.T) {
	srv := natstest.ForTest(t)
	clk := clocktesting.NewFakeClock(start)
	res := tiers.NewResolver(nil)
	l := newLimiter(t, srv, res, clk, 1, nil)
	ctx := context.Background()
	for range 500 {
		require.NotEqual(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict)
	}
	require.Equal(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict)

	res.Set(tierstest.Config(t, "tenants:\n  Project/alpha: Pro\n"))
	d := l.Allow(ctx, alpha)
	require.Equal(t, ratelimit.Allow, d.Verdict, "Pro: 501 is below the soft limit of 1000")
	require.EqualValues(t, 501, d.Count)

	res.Set(tierstest.Config(t, "tenants:\n  Project/alpha: {rateLimit: {soft: 10, hard: 20}}\n"))
	require.Equal(t, ratelimit.Deny, l.Allow(ctx, alpha).Verdict, "leased tokens above the new hard limit are not spent")
}

// TestPerReplicaFallback: without a bucket each replica takes its share.
func TestPerReplicaFallback(t *testing.T) {
	clk := clocktesting.NewFakeClock(start)
	l := newLimiter(t, nil, tiers.NewResolver(nil), clk, 2, nil)
	ctx := context.Background()
	verdicts := map[ratelimit.Verdict]int{}
	for range 300 {
		verdicts[l.Allow(ctx, alpha).Verdict]++
	}
	require.Equal(t, map[ratelimit.Verdict]int{ratelimit.Allow: 50, ratelimit.AllowWithWarning: 200, ratelimit.Deny: 50}, verdicts)
}

func TestKey(t *testing.T) {
	require.Equal(t, "Project.alpha.123", ratelimit.Key(alpha, 123))
	require.Equal(t, "User.a=2Eb=40c=3Dd.7", ratelimit.Key(scope.Scope{Type: scope.TypeUser, Name: "a.b@c=d"}, 7))
	require.NotEqual(t, ratelimit.Key(scope.Scope{Type: "User", Name: "a.b"}, 1), ratelimit.Key(scope.Scope{Type: "User", Name: "a=2Eb"}, 1))
}

// BenchmarkAllow measures one decision. Sub-benchmarks: a tenant far from
// its limit (tokens leased 64 at a time from the real JetStream bucket),
// an unlimited tenant, a tenant past its hard limit, and 1,000 tenants in
// turn (one lease per tenant per 64 writes).
func BenchmarkAllow(b *testing.B) {
	srv := natstest.ForTest(b)
	res := tierstest.Resolver(b, "tiers:\n  Big:\n    queryWindow: 1h\n    storageQuota: 1Gi\n    rateLimit: {soft: 1000000000000, hard: 1000000000000}\n"+
		"defaultTier: Big\ntenants:\n  Organization/acme: Enterprise\n  Project/full: Free\n")
	clk := clocktesting.NewFakeClock(start)
	ctx := context.Background()
	l := newLimiter(b, srv, res, clk, 2, nil)
	b.Run("leased", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.Allow(ctx, alpha).Verdict == ratelimit.Deny {
				b.Fatal("denied")
			}
		}
	})
	b.Run("unlimited", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(ctx, acme)
		}
	})
	full := scope.Scope{Type: scope.TypeProject, Name: "full"}
	for range 500 {
		l.Allow(ctx, full)
	}
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.Allow(ctx, full).Verdict != ratelimit.Deny {
				b.Fatal("allowed")
			}
		}
	})
	many := tierstest.Projects(1000)
	b.Run("1000-tenants", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, many[i%len(many)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(ctx, alpha)
			}
		})
	})
}
