// Package replicasbench measures what a client sees when consecutive
// requests land on different API server replicas (issue 18, item 4): a
// create acknowledged by replica a, then a consistent get (and a consistent
// list) on replica b at once. Both replicas are `eventpipe apiserver`
// processes on one JetStream and one ClickHouse (internal/devenv/devtest);
// the same reads on a, the replica that wrote, are measured in the same run
// for comparison. bench/README.md has the command and the results.
package replicasbench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/bench/internal/procstat"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// BenchmarkReadOnOtherReplica: b.N rounds of create on a, then get on b,
// get on a, list of the namespace on b (consistent reads: no
// resourceVersion), one after the other from one client. Every read must
// show the create (else the benchmark fails); the latencies are reported
// per kind of read. The namespace grows to b.N events, so the list's
// latency grows with -benchtime; 1000x keeps it small.
func BenchmarkReadOnOtherReplica(b *testing.B) {
	c := devtest.StartReplicas(b, devtest.ReplicaOptions{Replicas: 2})
	a, bb := c.Servers[0], c.Servers[1]
	onA, onB := a.Client(b, c, "kubeconfig"), bb.Client(b, c, "kubeconfig")
	ctx := context.Background()
	const ns = "bench"
	// Warm both replicas' connections and caches.
	for i := range 20 {
		name := fmt.Sprintf("warm-%d", i)
		if _, err := onA.CoreV1().Events(ns).Create(ctx, event(ns, name), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := onB.CoreV1().Events(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var create, getB, getA, listB load.Latencies
	busy0, err := procstat.MachineBusy()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("e-%d", i)
		t0 := time.Now()
		ev, err := onA.CoreV1().Events(ns).Create(ctx, event(ns, name), metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		got, err := onB.CoreV1().Events(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			b.Fatalf("get on b right after the create on a: %v", err)
		}
		if got.ResourceVersion != ev.ResourceVersion {
			b.Fatalf("get on b: resourceVersion %s, the create's %s", got.ResourceVersion, ev.ResourceVersion)
		}
		t2 := time.Now()
		if _, err := onA.CoreV1().Events(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		l, err := onB.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		if !holds(l.Items, name, ev.ResourceVersion) {
			b.Fatalf("list on b right after the create on a misses %s@%s", name, ev.ResourceVersion)
		}
		create, getB, getA, listB = append(create, t1.Sub(t0)), append(getB, t2.Sub(t1)), append(getA, t3.Sub(t2)), append(listB, t4.Sub(t3))
	}
	b.StopTimer()
	elapsed := time.Since(start)
	busy1, err := procstat.MachineBusy()
	if err != nil {
		b.Fatal(err)
	}
	report(b, "create-on-a", create)
	report(b, "get-on-b", getB)
	report(b, "get-on-a", getA)
	report(b, "list-on-b", listB)
	// Everything that ran is this benchmark's (client, dev stack, both
	// replicas, ClickHouse); the machine's busy time above what a round
	// trip chain can use shows how loaded the machine was.
	b.ReportMetric((busy1-busy0).Seconds()/elapsed.Seconds(), "machine-cores")
	fmt.Fprintf(os.Stderr, "replicas: %d rounds; get on b after create on a p50 %.2f ms p99 %.2f ms (get on a p50 %.2f p99 %.2f; list on b p50 %.2f p99 %.2f)\n",
		b.N, load.MS(getB.Pct(0.5)), load.MS(getB.Pct(0.99)), load.MS(getA.Pct(0.5)), load.MS(getA.Pct(0.99)), load.MS(listB.Pct(0.5)), load.MS(listB.Pct(0.99)))
}

func report(b *testing.B, prefix string, l load.Latencies) {
	b.ReportMetric(load.MS(l.Pct(0.50)), prefix+"-p50-ms")
	b.ReportMetric(load.MS(l.Pct(0.99)), prefix+"-p99-ms")
}

func holds(items []corev1.Event, name, rv string) bool {
	for _, it := range items {
		if it.Name == name {
			return it.ResourceVersion == rv
		}
	}
	return false
}

func event(ns, name string) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 1}
}
