// Package exporterbench measures `eventpipe export` against a real
// kube-apiserver 1.37 + etcd: how fast it moves a source's Events into
// JetStream, from a list (start, relist) and from a watch while the source
// is written as fast as it accepts writes. See bench/README.md.
package exporterbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/exporter"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// writers is the number of concurrent creators: enough to saturate
// kube-apiserver + etcd on two cores.
const writers = 32

func BenchmarkExporter(b *testing.B) {
	kube := kubetest.StartCluster(b, kubetest.Options{})
	ns := eventtest.Stream(b)
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(kube.Config)
	if err != nil {
		b.Fatal(err)
	}
	reader, err := eventlog.NewReader(ctx, ns.JS)
	if err != nil {
		b.Fatal(err)
	}
	log := benchLog{Publisher: eventlog.NewPublisher(ns.JS), Reader: reader}
	run := 0
	setup := func(b *testing.B) (namespace string, start func() (stop func())) {
		run++
		namespace = fmt.Sprintf("bench-%d", run)
		sc := scope.Scope{Type: scope.TypeProject, Name: namespace}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		cfg := exporter.DefaultConfig()
		cfg.ClusterName, cfg.ScopeType, cfg.ScopeName, cfg.Namespaces = namespace, sc.Type, sc.Name, []string{namespace}
		// The source is local and the benchmark owns it: no client-side
		// rate limit, so that the source is what limits.
		cfg.QPS = -1
		start = func() func() {
			e, err := exporter.New(ctx, cfg, cs, ns.JS, log, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- e.Run(rctx) }()
			for e.Ready() != nil {
				time.Sleep(10 * time.Millisecond)
			}
			return func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}
		}
		return namespace, start
	}

	// list: b.N events exist before the exporter starts; it lists them page
	// by page and publishes them (a first start, or a relist after 410).
	b.Run("list", func(b *testing.B) {
		namespace, start := setup(b)
		base := streamMsgs(b, ns.JS)
		createEvents(b, cs, namespace, b.N)
		b.ResetTimer()
		t0 := time.Now()
		stop := start()
		waitStored(b, ns.JS, base+b.N)
		el := time.Since(t0)
		b.StopTimer()
		stop()
		b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	})

	// watch: the exporter watches while writers create b.N events as fast
	// as kube-apiserver takes them. source-events/s is the source's rate;
	// events/s counts until the last one is in JetStream; drain-ms is how
	// far the exporter was behind when the writers stopped.
	b.Run("watch", func(b *testing.B) {
		namespace, start := setup(b)
		base := streamMsgs(b, ns.JS)
		stop := start()
		defer stop()
		b.ResetTimer()
		t0 := time.Now()
		createEvents(b, cs, namespace, b.N)
		created := time.Since(t0)
		waitStored(b, ns.JS, base+b.N)
		el := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/created.Seconds(), "source-events/s")
		b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
		b.ReportMetric(float64((el - created).Milliseconds()), "drain-ms")
	})
}

type benchLog struct {
	*eventlog.Publisher
	*eventlog.Reader
}

// createEvents creates n kubelet-style events with writers goroutines.
func createEvents(b *testing.B, cs kubernetes.Interface, namespace string, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	msg := "Failed to pull image \"registry.example.com/team/app:v1.2.3\": rpc error: code = NotFound desc = " + strings.Repeat("x", 120)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				now := metav1.Now()
				ev := &corev1.Event{
					ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("app-%d.%x", i%500, i)},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: fmt.Sprintf("app-%d", i%500),
						UID: "0f4c1d2e-1111-2222-3333-444455556666", APIVersion: "v1", ResourceVersion: "12345", FieldPath: "spec.containers{app}"},
					Reason: "Failed", Message: msg, Type: corev1.EventTypeWarning, Count: 1,
					Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
					FirstTimestamp: now, LastTimestamp: now,
				}
				for {
					_, err := cs.CoreV1().Events(namespace).Create(context.Background(), ev, metav1.CreateOptions{})
					if err == nil {
						break
					}
					time.Sleep(10 * time.Millisecond) // 429/timeouts under load: retry
				}
			}
		}()
	}
	wg.Wait()
}

// streamMsgs is the number of states in the stream; each sub-benchmark
// counts from what was there before it.
func streamMsgs(b *testing.B, js jetstream.JetStream) int {
	s, err := js.Stream(context.Background(), eventlog.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return int(info.State.Msgs)
}

// waitStored waits until the stream holds want states.
func waitStored(b *testing.B, js jetstream.JetStream, want int) {
	deadline := time.Now().Add(10 * time.Minute)
	for streamMsgs(b, js) < want {
		if time.Now().After(deadline) {
			b.Fatalf("the stream holds %d states after 10m, want %d", streamMsgs(b, js), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
