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
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/bench/internal/history"
	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
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

// fixedWatermark: everything generated is committed.
type fixedWatermark uint64

func (w fixedWatermark) Load() uint64                          { return uint64(w) }
func (w fixedWatermark) WaitFor(context.Context, uint64) error { return nil }

// noLog: the benchmark writes nothing, so the log holds nothing after the
// watermark; a consistent list asks it only for its end (Bounds).
type noLog struct{ event.Log }

func (noLog) Bounds(context.Context) (uint64, uint64, error) { return 1, 1, nil }

func (noLog) PublishAll(context.Context, []*eventlog.Record, []string) error {
	return errors.New("the EventQuery benchmark's server takes no writes")
}

func startAPI(b *testing.B, s *chstore.Store, wm uint64) *rest.Config {
	dir := b.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	// The admin, and one user inside each tenant (the fifth column holds
	// the tenant as user extras).
	lines := `bench-token,admin,admin,"system:masters"` + "\n"
	for t := 0; t < tenants; t++ {
		lines += fmt.Sprintf(`tenant-token-%[1]d,user-%[1]d,uid-%[1]d,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=tenant-%05[1]d"`+"\n", t)
	}
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = filepath.Join(dir, "certs")
	o.TokenAuthFile = tokens
	cfg, err := o.Config(apiserver.Backends{Log: noLog{}, Index: event.ClickHouseIndex{Store: s}, History: s, Watermark: fixedWatermark(wm)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() { _ = srv.Run(ctx) }()
	rc := &rest.Config{Host: "https://" + l.Addr().String(), BearerToken: "bench-token", QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cs := kubernetes.NewForConfigOrDie(rc)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := cs.Discovery().ServerVersion(); err == nil {
			return rc
		}
		if time.Now().After(deadline) {
			b.Fatal("API server not ready in 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	var srv *chserver.Server
	if dir := os.Getenv("EVENTQUERY_BENCH_DIR"); dir != "" {
		var err error
		// A kept directory lets later runs reuse the dataset.
		if srv, err = chserver.Start(context.Background(), chserver.Options{Dir: dir}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Stop() })
	} else {
		srv = chtest.ForTest(b)
	}
	s := storetest.Migrated(b, srv)
	ctx := context.Background()
	o := history.Options{Events: n, Days: days, Tenants: tenants, Now: time.Now().UTC(),
		TenantName: func(i int) string { return fmt.Sprintf("tenant-%05d", i) }}
	var ds history.Result
	var err error
	if history.Reusable(ctx, s, o) {
		ds, err = history.Describe(ctx, s)
		b.Logf("reusing the stored history")
	} else {
		ds, err = history.Fill(ctx, s, o)
		b.Logf("generated the history in %s (%.0f states/s)", ds.Took.Round(time.Second), float64(ds.Rows)/ds.Took.Seconds())
	}
	if err != nil {
		b.Fatal(err)
	}
	maxSeq := ds.MaxSeq
	b.Logf("dataset: %d states, %d bytes on disk (%.1f B/event)", ds.Rows, ds.BytesOnDisk, ds.BytesPerEvent())
	b.ReportMetric(ds.BytesPerEvent(), "disk-B/event")
	rc := startAPI(b, s, maxSeq)

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
