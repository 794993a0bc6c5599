package apiserverbench

import (
	"context"
	"flag"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var (
	visibleRate     = flag.Int("apibench.visible-rate", 1000, "events created per second while visibility is sampled")
	visibleDuration = flag.Duration("apibench.visible-duration", 20*time.Second, "how long events are created while visibility is sampled")
	visibleEvery    = flag.Int("apibench.visible-every", 20, "one create in this many is followed by a list that waits for it")
	visibleSenders  = flag.Int("apibench.visible-senders", 128, "create workers available to keep up the rate, each with its own connection")
)

// BenchmarkVisibility measures how long after a create's answer a list
// holds the event (invariant 4, docs/architecture.md#4-consistent-reads: a
// list reflects every write acknowledged before it), while a paced writer creates
// -apibench.visible-rate events a second over 20 namespaces. After one
// create in -apibench.visible-every, the same worker lists the event's
// namespace (by name, with a field selector) with no resourceVersion, as
// `kubectl create ... && kubectl get events` does: a consistent read. On
// eventpipe it is answered from the index up to the writer's watermark and
// the log after it; on kube-apiserver from etcd or its watch cache.
// visible-* is the time from the create's answer to that list's answer (so
// it is the list's own time); not-visible counts lists that came back
// without the event (must be 0).
func BenchmarkVisibility(b *testing.B) {
	forEachServer(b, benchVisibility)
}

func benchVisibility(b *testing.B, s *server) {
	ctx := context.Background()
	ct := contentType(b)
	senders, err := newClients(s, *visibleSenders, ct)
	if err != nil {
		b.Fatal(err)
	}
	f := load.NewEventFactory()
	var (
		mu                  sync.Mutex
		vis                 load.Latencies
		n, errs, notVisible atomic.Int64
		firstErr            atomic.Value
	)
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	clk := startClock(b)
	_, maxLag, elapsed := pace(senders, *visibleRate, *visibleDuration, func(cs *kubernetes.Clientset) {
		ev, seq := f.Next()
		_, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		if err != nil {
			fail(err)
			return
		}
		n.Add(1)
		if seq%uint64(*visibleEvery) != 0 {
			return
		}
		t := time.Now()
		l, err := cs.CoreV1().Events(ev.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", ev.Name).String(),
		})
		d := time.Since(t)
		if err != nil {
			fail(err)
			return
		}
		if len(l.Items) != 1 {
			notVisible.Add(1)
			return
		}
		mu.Lock()
		vis = append(vis, d)
		mu.Unlock()
	})
	m := clk.stop(b)
	if e := errs.Load(); e > 0 {
		b.Logf("WARNING: %d requests failed, first: %v", e, firstErr.Load())
	}
	b.ReportMetric(0, "ns/op")
	reportLatency(b, "visible", vis)
	b.ReportMetric(float64(len(vis)), "samples")
	b.ReportMetric(float64(notVisible.Load()), "not-visible")
	b.ReportMetric(float64(errs.Load()), "errors")
	b.ReportMetric(float64(n.Load())/elapsed.Seconds(), "creates/s")
	b.ReportMetric(load.MS(maxLag), "pace-lag-max-ms")
	m.report(b, float64(n.Load()), "create")
	s.reportMemory(b)
}
