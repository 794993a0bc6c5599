package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

type platformScopes struct{}

func (platformScopes) WriteScope(context.Context, *corev1.Event) (scope.Scope, error) {
	return scope.Platform, nil
}

// BenchmarkHandler is the receiver alone on an embedded JetStream: parse,
// validate and publish batches of 1,000 events (no HTTP server, no
// writer). One op is one event.
func BenchmarkHandler(b *testing.B) {
	ns := eventtest.Stream(b)
	h := New(eventlog.NewPublisher(ns.JS), platformScopes{}, DefaultConfig())
	const batch = 1000
	var bodies [][]byte
	for i := 0; i < b.N; i += batch {
		var buf bytes.Buffer
		for j := i; j < min(i+batch, b.N); j++ {
			fmt.Fprintln(&buf, coreEvent(j))
		}
		bodies = append(bodies, buf.Bytes())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, body := range bodies {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func coreEvent(i int) string {
	return fmt.Sprintf(`{"metadata":{"name":"web-%d.%x","namespace":"prod","uid":"u-%d","resourceVersion":"%d"},`+
		`"involvedObject":{"kind":"Pod","namespace":"prod","name":"web-%d","uid":"p-%d","apiVersion":"v1"},`+
		`"reason":"BackOff","message":"Back-off restarting failed container web in pod web-%d_prod","source":{"component":"kubelet","host":"node-1"},`+
		`"firstTimestamp":"2026-11-25T10:00:00Z","lastTimestamp":"2026-11-25T10:05:00Z","count":1,"type":"Warning"}`, i%100, i, i, i+1, i%100, i%100, i%100)
}
