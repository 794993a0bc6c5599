// Package eventquerybench measures EventQuery, EventFacetQuery and the
// native Events list through the API server over a large generated history
// (see bench/README.md). The dataset is the generator's realistic events,
// copied along 60 days inside ClickHouse (bench/internal/history).
//
//	EVENTQUERY_BENCH_EVENTS=100000000 EVENTQUERY_BENCH_DIR=/var/tmp/eqbench make bench-eventquery
package eventquerybench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/bench/internal/history"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

const (
	days    = 60
	tenants = 1000
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// tokens are the admin and one user inside each tenant (the fifth column
// holds the tenant as user extras).
func tokens() string {
	lines := `bench-token,admin,admin,"system:masters"` + "\n"
	for t := 0; t < tenants; t++ {
		lines += fmt.Sprintf(`tenant-token-%[1]d,user-%[1]d,uid-%[1]d,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=tenant-%05[1]d"`+"\n", t)
	}
	return lines
}

// measure runs f iters times and reports p50/p99 latency in ms.
func measure(b *testing.B, iters int, f func(i int) int) {
	lat := make([]time.Duration, 0, iters)
	items := 0
	b.ResetTimer()
	for i := 0; i < iters; i++ {
		t0 := time.Now()
		items += f(i)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / 1e6 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(float64(items)/float64(iters), "items/op")
}

func BenchmarkEventQuery(b *testing.B) {
	n := envInt("EVENTQUERY_BENCH_EVENTS", 10_000_000)
	iters := int(envInt("EVENTQUERY_BENCH_ITERS", 200))
	s := history.Store(b, os.Getenv("EVENTQUERY_BENCH_DIR"))
	ctx := context.Background()
	o := history.Options{Events: n, Days: days, Tenants: tenants, Now: time.Now().UTC(),
		TenantName: func(i int) string { return fmt.Sprintf("tenant-%05d", i) }}
	ds := history.Ensure(b, s, o)
	rc := &rest.Config{Host: history.Serve(b, s, ds.MaxSeq, tokens()), BearerToken: "bench-token", QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}

	// The generator names namespaces per cluster; each query asks for one
	// its tenant has.
	namespaces := map[int][]string{}
	namespaceOf := func(i int) string {
		t := (i * 37) % tenants
		if _, ok := namespaces[t]; !ok {
			rows, err := s.Conn().Query(ctx, "SELECT DISTINCT namespace FROM "+s.Database()+".events WHERE scope_type = 'Project' AND scope_name = ? ORDER BY namespace", o.TenantName(t))
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var ns string
				if err := rows.Scan(&ns); err != nil {
					b.Fatal(err)
				}
				namespaces[t] = append(namespaces[t], ns)
			}
			rows.Close()
			if len(namespaces[t]) == 0 {
				b.Fatalf("tenant %s has no events", o.TenantName(t))
			}
		}
		return namespaces[t][i%len(namespaces[t])]
	}
	tenantClients := map[int]*kubernetes.Clientset{}
	tenantCS := func(i int) *kubernetes.Clientset {
		t := (i * 37) % tenants
		if c, ok := tenantClients[t]; ok {
			return c
		}
		trc := rest.CopyConfig(rc)
		trc.BearerToken = fmt.Sprintf("tenant-token-%d", t)
		tenantClients[t] = kubernetes.NewForConfigOrDie(trc)
		return tenantClients[t]
	}
	post := func(cs *kubernetes.Clientset, resource string, body any) []byte {
		raw, err := cs.Discovery().RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/"+resource).
			SetHeader("Content-Type", "application/json").Body(mustJSON(body)).Do(context.Background()).Raw()
		if err != nil {
			b.Fatalf("%s: %v: %s", resource, err, raw)
		}
		return raw
	}
	// Every query runs as a user inside a tenant (a different tenant each
	// time, so caches help little), as tenants' developers would.
	b.Run("eventquery-60d-one-namespace-warning", func(b *testing.B) {
		measure(b, iters, func(i int) int {
			var q v1alpha1.EventQuery
			_ = json.Unmarshal(post(tenantCS(i), "eventqueries", &v1alpha1.EventQuery{ObjectMeta: metav1.ObjectMeta{Name: "q"},
				Spec: v1alpha1.EventQuerySpec{StartTime: "now-59d", EndTime: "now", Namespace: namespaceOf(i),
					FieldSelector: "type=Warning", Limit: 100}}), &q)
			return len(q.Status.Results)
		})
	})
	b.Run("eventquery-60d-whole-tenant-warning", func(b *testing.B) {
		measure(b, iters, func(i int) int {
			var q v1alpha1.EventQuery
			_ = json.Unmarshal(post(tenantCS(i), "eventqueries", &v1alpha1.EventQuery{ObjectMeta: metav1.ObjectMeta{Name: "q"},
				Spec: v1alpha1.EventQuerySpec{StartTime: "now-59d", EndTime: "now", FieldSelector: "type=Warning", Limit: 100}}), &q)
			return len(q.Status.Results)
		})
	})
	b.Run("facets-histogram-7d-whole-tenant", func(b *testing.B) {
		measure(b, iters, func(i int) int {
			var q v1alpha1.EventFacetQuery
			_ = json.Unmarshal(post(tenantCS(i), "eventfacetqueries", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}}), &q)
			return int(q.Status.Total)
		})
	})
	b.Run("facets-histogram-7d-one-namespace-warning", func(b *testing.B) {
		measure(b, iters, func(i int) int {
			var q v1alpha1.EventFacetQuery
			_ = json.Unmarshal(post(tenantCS(i), "eventfacetqueries", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"},
				Spec: v1alpha1.EventFacetQuerySpec{Namespace: namespaceOf(i), FieldSelector: "type=Warning"}}), &q)
			return int(q.Status.Total)
		})
	})
	b.Run("native-list-24h-one-namespace", func(b *testing.B) {
		measure(b, iters, func(i int) int {
			l, err := tenantCS(i).CoreV1().Events(namespaceOf(i)).List(context.Background(), metav1.ListOptions{Limit: 500})
			if err != nil {
				b.Fatal(err)
			}
			return len(l.Items)
		})
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
