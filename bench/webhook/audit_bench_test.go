package webhookbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/webhook"
)

// BenchmarkAuditIngest posts b.N audit records as kube-apiserver's audit
// webhook does (audit.k8s.io/v1 EventLists of 400, its default
// --audit-webhook-batch-max-size), and measures until the audit indexer's
// watermark covers the last one: records/s end to end into ClickHouse,
// receiver, JetStream, indexer and ClickHouse sharing the machine. The
// records are what a RequestResponse-for-writes policy makes: one write
// with its request and response bodies for every four reads with metadata.
func BenchmarkAuditIngest(b *testing.B) {
	chtest.RequireBinary(b)
	bodies, jsonBytes := auditCorpus(b, b.N)
	env := startEventpipe(b)
	rc, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	wm, err := audit.WatchWatermark(ctx, env.JS)
	if err != nil {
		b.Fatal(err)
	}
	stream, err := env.JS.Stream(ctx, audit.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(jsonBytes / int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	cpu := startCPU()
	postAll(bodies, func(body []byte) { postAudit(b, hc, env.APIServerURL, body) })
	posted := time.Since(t0)
	info, err := stream.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	last := info.State.LastSeq
	if err := wm.WaitFor(ctx, last); err != nil {
		b.Fatal(err)
	}
	el := time.Since(t0)
	b.StopTimer()
	use := cpu.stop()
	if int(last) < b.N {
		b.Fatalf("the stream holds %d records, want %d", last, b.N)
	}
	b.ReportMetric(use.ownCores, "own-cores")
	b.ReportMetric(use.childCores, "clickhouse-cores")
	b.ReportMetric(use.otherCores, "other-cores")
	b.ReportMetric(float64(use.self.Microseconds())/float64(b.N), "go-µs/record")
	b.ReportMetric(float64(use.children.Microseconds())/float64(b.N), "clickhouse-µs/record")
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/posted.Seconds(), "post-records/s")
}

func postAudit(b *testing.B, hc *http.Client, url string, body []byte) {
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, url+webhook.AuditPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
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
			time.Sleep(100 * time.Millisecond) // kube-apiserver retries the same way; ids make it idempotent
		default:
			b.Fatalf("POST %s: %d %s", webhook.AuditPath, resp.StatusCode, msg)
		}
	}
}

// auditCorpus builds EventList bodies of 400 records each.
func auditCorpus(b testing.TB, n int) (bodies [][]byte, jsonBytes int64) {
	t0 := time.Date(2026, time.March, 2, 6, 0, 0, 0, time.UTC)
	var items []json.RawMessage
	flush := func() {
		body, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
		items = items[:0]
	}
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ns, name := fmt.Sprintf("team-%d", i%40), fmt.Sprintf("app-%d", i%997)
		base := fmt.Sprintf(`"auditID":"%08x-0000-4000-8000-%012x","stage":"ResponseComplete","user":{"username":"user-%d@example.com","groups":["system:authenticated"]},`+
			`"sourceIPs":["10.0.%d.%d"],"userAgent":"kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0","requestReceivedTimestamp":%q,"stageTimestamp":%q`,
			i, i, i%50, i%250, i%250, at.Format("2006-01-02T15:04:05.000000Z"), at.Add(3*time.Millisecond).Format("2006-01-02T15:04:05.000000Z"))
		var item string
		if i%5 == 0 {
			obj := fmt.Sprintf(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":%q,"namespace":%q,"labels":{"app":%q}},"data":{"config.yaml":"replicas: 3\nimage: registry.example/app:%d\n"}}`, name, ns, name, i%20)
			item = fmt.Sprintf(`{"level":"RequestResponse",%s,"verb":"update","requestURI":"/api/v1/namespaces/%s/configmaps/%s",`+
				`"objectRef":{"resource":"configmaps","namespace":%q,"name":%q,"apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},`+
				`"requestObject":%s,"responseObject":%s}`, base, ns, name, ns, name, obj, obj)
		} else {
			item = fmt.Sprintf(`{"level":"Metadata",%s,"verb":"get","requestURI":"/apis/apps/v1/namespaces/%s/deployments/%s",`+
				`"objectRef":{"resource":"deployments","namespace":%q,"name":%q,"apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200}}`,
				base, ns, name, ns, name)
		}
		jsonBytes += int64(len(item))
		items = append(items, json.RawMessage(item))
		if len(items) == 400 {
			flush()
		}
	}
	if len(items) > 0 {
		flush()
	}
	return bodies, jsonBytes
}
