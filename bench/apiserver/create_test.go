package apiserverbench

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var (
	createWorkers = flag.String("apibench.workers", "16,32,64",
		"concurrent create workers, each with its own connection; one sub-benchmark per number")
	createWarmup   = flag.Duration("apibench.create-warmup", 2*time.Second, "create load before each measured window, not measured")
	createDuration = flag.Duration("apibench.create-duration", 10*time.Second, "measured window of each create run")
)

// BenchmarkCreate measures single-event creates through the API:
// kubelet-style core/v1 Events of about 1 KB, each with a new name, sent by
// N workers that each wait for the answer before sending the next (as N
// kubelets would), on each server in turn. The workers send what client-go
// sends, but by default read the answer without decoding it
// (-apibench.create-client): kubelets run on other machines, while here
// the load client shares two cores with the server under test. Each run is
// a warm-up of -apibench.create-warmup, then a measured window of
// -apibench.create-duration. Use -benchtime 1x: one run is one measurement
// (ns/op is suppressed).
func BenchmarkCreate(b *testing.B) {
	workers := parseInts(b, "apibench.workers", *createWorkers)
	forEachServer(b, func(b *testing.B, s *server) {
		f := load.NewEventFactory()
		for _, n := range workers {
			b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) { benchCreate(b, s, f, n) })
		}
	})
}

func benchCreate(b *testing.B, s *server, f *load.EventFactory, workers int) {
	ctx := context.Background()
	clients, err := newCreators(s, workers, contentType(b))
	if err != nil {
		b.Fatal(err)
	}
	cs, err := newClient(s, contentType(b))
	if err != nil {
		b.Fatal(err)
	}
	if w := load.Run(ctx, clients, f, time.Now().Add(*createWarmup), 0); w.Errs.Load() > 0 {
		b.Fatalf("warm-up: %d of %d creates failed, first: %v", w.Errs.Load(), w.Errs.Load()+w.OK.Load(), w.FirstErr)
	}
	clk := startClock(b)
	r := load.Run(ctx, clients, f, time.Now().Add(*createDuration), 0)
	m := clk.stop(b)
	if n := r.Errs.Load(); n > 0 {
		// Reported, not failed on: a failed benchmark prints no metrics.
		b.Logf("WARNING: %d of %d creates failed, first: %v", n, n+r.OK.Load(), r.FirstErr)
	}
	ok := float64(r.OK.Load())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ok/r.Elapsed.Seconds(), "creates/s")
	reportLatency(b, "create", r.Lat)
	b.ReportMetric(float64(r.Errs.Load()), "errors")
	m.report(b, ok, "create")
	s.reportMemory(b)

	reportSizes(b, ctx, cs, f)
}

// reportSizes creates one event of each kind and reports their mean size as
// JSON as sent (sent-B) and as the server returns it (stored-B: with uid,
// resourceVersion, creationTimestamp and managedFields).
func reportSizes(b *testing.B, ctx context.Context, cs *kubernetes.Clientset, f *load.EventFactory) {
	var sent, stored int
	const kinds = 8
	for range kinds {
		ev, _ := f.Next()
		sent += load.JSONSize(ev)
		got, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		stored += load.JSONSize(got)
	}
	b.ReportMetric(float64(sent)/kinds, "sent-B")
	b.ReportMetric(float64(stored)/kinds, "stored-B")
}
