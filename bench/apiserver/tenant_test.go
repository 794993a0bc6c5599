package apiserverbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/internal/devenv"
)

// benchTiers puts dev mode's tenant Project/alpha on a tier whose limits a
// benchmark never reaches, so that every create still goes through the
// rate limiter (leases from the shared JetStream bucket) and the quota
// check, but none is refused.
const benchTiers = `defaultTier: Free
tiers:
  Bench:
    queryWindow: 24h
    storageQuota: 1Ti
    rateLimit: {soft: 100000000, hard: 200000000}
tenants:
  Project/alpha: Bench
`

// BenchmarkTenantCreateCost measures what tenancy and tiers cost on the
// create path (issue 5: under 10% of single-event create throughput). The
// same eventpipe serves two kinds of caller in alternating rounds of
// -apibench.create-duration each: the platform admin (a static token, no
// scope to stamp, no rate limit, no quota: the Platform scope) and a tenant
// user (a static token with scope extras: scope resolution and stamping,
// the rate limiter and the storage quota on every create). Reports each
// caller's creates/s over all its rounds and their ratio.
func BenchmarkTenantCreateCost(b *testing.B) {
	const workers, rounds = 16, 3
	s := startEventpipe(b, func(o *devenv.Options) {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.DataDir, "tiers.yaml"), []byte(benchTiers), 0o644); err != nil {
			b.Fatal(err)
		}
	})
	ctx, env := context.Background(), s.env
	callers := map[string]string{"platform": env.Kubeconfig}
	for _, k := range env.TenantKubeconfigs {
		if k.Scope.Name == "alpha" {
			callers["tenant"] = k.Path
		}
	}
	if callers["tenant"] == "" {
		b.Fatal("dev mode wrote no kubeconfig for Project/alpha")
	}
	f := load.NewEventFactory()
	ok := map[string]float64{}
	secs := map[string]float64{}
	for round := range rounds {
		for _, who := range []string{"platform", "tenant"} {
			rc, err := clientcmd.BuildConfigFromFlags("", callers[who])
			if err != nil {
				b.Fatal(err)
			}
			clients, err := newCreators(&server{name: who, config: rc, env: env}, workers, contentType(b))
			if err != nil {
				b.Fatal(err)
			}
			if round == 0 {
				load.Run(ctx, clients, f, time.Now().Add(*createWarmup), 0)
			}
			r := load.Run(ctx, clients, f, time.Now().Add(*createDuration), 0)
			if n := r.Errs.Load(); n > 0 {
				b.Fatalf("%s round %d: %d creates failed, first: %v", who, round, n, r.FirstErr)
			}
			ok[who] += float64(r.OK.Load())
			secs[who] += r.Elapsed.Seconds()
			b.Logf("round %d %s: %.0f creates/s", round, who, float64(r.OK.Load())/r.Elapsed.Seconds())
		}
	}
	p, t := ok["platform"]/secs["platform"], ok["tenant"]/secs["tenant"]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(p, "platform-creates/s")
	b.ReportMetric(t, "tenant-creates/s")
	b.ReportMetric(t/p, "tenant/platform")
}
