// Package webhookbench measures batched ingest through the webhook
// receiver end to end: NDJSON batches POSTed to /ingest/v1/events on the
// API server, into JetStream, through the writer into ClickHouse, all on
// one machine (dev mode's layout). See bench/README.md.
package webhookbench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/bench/internal/fleet"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/generator"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/webhook"
)

var (
	batchSize = flag.Int("webhookbench.batch", 1000, "events per POST")
	posters   = flag.Int("webhookbench.posters", 4, "concurrent POSTs")
	useGzip   = flag.Bool("webhookbench.gzip", false, "gzip the bodies")
)

// BenchmarkWebhookIngest posts b.N generated event states (internal/generator,
// 20 tenants, as in bench/writer) as NDJSON watch events in batches, and
// measures until the writer's watermark covers the last one: the sustained
// end-to-end rate with receiver, JetStream, writer and ClickHouse sharing
// the machine. post-events/s is the rate of 202 answers alone.
func BenchmarkWebhookIngest(b *testing.B) {
	chtest.RequireBinary(b)
	bodies, jsonBytes := corpus(b, b.N)
	env := startEventpipe(b)
	rc, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		b.Fatal(err)
	}
	reader, err := eventlog.NewReader(context.Background(), env.JS)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(jsonBytes / int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	cpu := startCPU()
	postAll(bodies, func(body []byte) { post(b, hc, env.APIServerURL, body) })
	posted := time.Since(t0)
	_, last, err := reader.Bounds(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if err := env.Writer.WaitFor(context.Background(), last); err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0)
	b.StopTimer()
	use := cpu.stop()
	b.ReportMetric(use.ownCores, "own-cores")
	b.ReportMetric(use.childCores, "clickhouse-cores")
	b.ReportMetric(use.otherCores, "other-cores")
	// CPU per event, split into this process (receiver, JetStream, writer)
	// and clickhouse-server: where a faster pipeline has to save.
	b.ReportMetric(float64(use.self.Microseconds())/float64(b.N), "go-µs/event")
	b.ReportMetric(float64(use.children.Microseconds())/float64(b.N), "clickhouse-µs/event")
	if int(last) < b.N {
		b.Fatalf("the stream holds %d states, want %d", last, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/posted.Seconds(), "post-events/s")
}

// postAll sends every body with -webhookbench.posters concurrent posters.
func postAll(bodies [][]byte, post func(body []byte)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range *posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				post(bodies[i])
			}
		}()
	}
	wg.Wait()
}

func post(b *testing.B, hc *http.Client, url string, body []byte) {
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, url+webhook.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		if *useGzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			return
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 20:
			time.Sleep(100 * time.Millisecond) // retried whole: ids make it idempotent
		default:
			b.Fatalf("POST %s: %d %s", webhook.Path, resp.StatusCode, msg)
		}
	}
}

// corpus builds the request bodies: generator states as watch events, so
// that creates, updates and deletes keep their meaning, with the tenant in
// the scope annotations (the benchmark posts as a platform admin).
func corpus(b testing.TB, n int) (bodies [][]byte, jsonBytes int64) {
	now := time.Date(2026, time.March, 2, 6, 0, 0, 0, time.UTC)
	g, err := generator.New(generator.Config{Tenants: fleet.Tenants(), Seed: 2,
		Now: func() time.Time { now = now.Add(24 * time.Hour / 500_000); return now }})
	if err != nil {
		b.Fatal(err)
	}
	types := map[eventlog.Op]string{eventlog.OpCreate: "ADDED", eventlog.OpUpdate: "MODIFIED", eventlog.OpDelete: "DELETED"}
	var buf bytes.Buffer
	flush := func() {
		body := append([]byte(nil), buf.Bytes()...)
		if *useGzip {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = z.Bytes()
		}
		bodies = append(bodies, body)
		buf.Reset()
	}
	for i := range n {
		op, sc, ev := g.Next()
		ev = ev.DeepCopy()
		if ev.Annotations == nil {
			ev.Annotations = map[string]string{}
		}
		ev.Annotations[scope.AnnotationType] = sc.Type
		if sc.Name != "" {
			ev.Annotations[scope.AnnotationName] = sc.Name
		}
		// A source resourceVersion per state makes every id distinct (a
		// delete repeats its event's last state).
		ev.ResourceVersion = fmt.Sprint(i + 1)
		j, err := json.Marshal(map[string]any{"type": types[op], "object": ev})
		if err != nil {
			b.Fatal(err)
		}
		jsonBytes += int64(len(j))
		buf.Write(j)
		buf.WriteByte('\n')
		if (i+1)%*batchSize == 0 {
			flush()
		}
	}
	if buf.Len() > 0 {
		flush()
	}
	return bodies, jsonBytes
}

func startEventpipe(b testing.TB) *devenv.Env {
	b.Helper()
	o := devtest.Options(b)
	// Batched ingest ends in ClickHouse; the activity pipeline is another
	// consumer of the same stream and, in production, another process.
	o.Activities = false
	return devtest.Run(b, o)
}
