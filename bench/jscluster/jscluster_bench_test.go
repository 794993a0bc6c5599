// Package jscluster measures event creates through eventpipe's API with
// the EVENTS stream at one replica and at three, each on a fresh 3-node
// JetStream cluster of real nats-server processes on loopback, side by
// side in one run (issue 18: "create latency with R1 vs R3").
//
//	make bench-jscluster
package jscluster

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// creates is how many creates each replica count is measured over
// (JSCLUSTER_BENCH_CREATES overrides it); workers is the clients' fixed
// concurrency, each waiting for its create's answer before the next.
const workers = 32

func creates() int {
	if v, err := strconv.Atoi(os.Getenv("JSCLUSTER_BENCH_CREATES")); err == nil && v > 0 {
		return v
	}
	return 20000
}

func BenchmarkCreates(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", replicas), func(b *testing.B) {
			c := natstest.StartCluster(b, 3)
			o := devtest.Options(b)
			o.NATSURL = c.URL()
			o.Stream.Replicas = replicas
			o.Activities = false
			o.EtcdPort = -1
			env := devtest.Run(b, o)
			cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
			if err != nil {
				b.Fatal(err)
			}
			cfg.QPS, cfg.Burst = -1, 0
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				b.Fatal(err)
			}
			run(b, cs, "warmup", 1000) // connections, caches, the stream's first blocks
			b.ResetTimer()
			for range b.N {
				lat, elapsed := run(b, cs, "bench", creates())
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "creates/s")
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			}
		})
	}
}

// run makes n creates in namespace ns from workers clients and returns
// their latencies, sorted, and the wall time.
func run(b *testing.B, cs kubernetes.Interface, ns string, n int) ([]time.Duration, time.Duration) {
	b.Helper()
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				now := metav1.NewTime(time.Now())
				t0 := time.Now()
				_, err := cs.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("e.%07d", i)},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
					Reason:         "Started", Type: corev1.EventTypeNormal, FirstTimestamp: now, LastTimestamp: now, Count: 1,
				}, metav1.CreateOptions{})
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, elapsed
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
