package apiserverbench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

var (
	watchers      = flag.Int("apibench.watchers", 100, "concurrent watchers, each with its own connection")
	watchRate     = flag.Int("apibench.watch-rate", 1000, "events created per second while the watchers watch")
	watchDuration = flag.Duration("apibench.watch-duration", 20*time.Second, "how long events are created while the watchers watch")
	watchWarmup   = flag.Duration("apibench.watch-warmup", 2*time.Second, "events of the first part of the run are checked for loss but left out of the latency percentiles")
	watchSenders  = flag.Int("apibench.watch-senders", 128, "create workers available to keep up the rate, each with its own connection")
	watchScopes   = flag.String("apibench.watch-scopes", "namespace,all", "which watches to run: namespace (each watcher watches one of the 20 namespaces) and/or all (each watches all namespaces)")
)

// BenchmarkWatch measures create→watch delivery: -apibench.watchers
// watchers, each listing then watching from the list's resourceVersion (as
// an informer does), while a paced writer creates -apibench.watch-rate
// events per second spread over 20 namespaces for -apibench.watch-duration.
// Each event carries the time its create was sent; a delivery's latency is
// its arrival at the watcher less that time, so it includes the create
// request itself. Two variants:
//
//   - watch=namespace: watcher i watches namespace i mod 20, so each event
//     goes to 5 of the 100 watchers (5,000 deliveries/s);
//   - watch=all: every watcher watches all namespaces, so each event goes
//     to all 100 (100,000 deliveries/s).
//
// After the writer stops, the run waits (up to 15s) for every watcher to
// have every event whose create succeeded, then counts missed and
// duplicated deliveries; both must be 0.
func BenchmarkWatch(b *testing.B) {
	forEachServer(b, func(b *testing.B, s *server) {
		for _, sc := range splitList(*watchScopes) {
			if sc != "namespace" && sc != "all" {
				b.Fatalf("-apibench.watch-scopes=%q: want namespace and/or all", *watchScopes)
			}
			b.Run("watch="+sc, func(b *testing.B) { benchWatch(b, s, sc == "all") })
		}
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// watcherState is one watcher's deliveries.
type watcherState struct {
	ns       string // "" for all namespaces
	nsIdx    int
	counts   []uint8 // deliveries per event seq
	received atomic.Int64
	foreign  int64 // events of other runs (a previous variant)
	errors   []string
	lat      latencies
	closed   atomic.Bool
}

func benchWatch(b *testing.B, s *server, all bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ct := contentType(b)
	total := int(float64(*watchRate) * watchDuration.Seconds())
	warm := uint64(float64(*watchRate) * watchWarmup.Seconds())
	f := newEventFactory()
	run := strconv.FormatUint(f.nonce, 10)
	nss := namespaces()

	// Stopping the watches makes client-go deliver an error event (the
	// response body was closed); those are not the server's.
	var stopping atomic.Bool
	defer stopping.Store(true)

	// Watchers: list (limit 1) for a resourceVersion, then watch from it.
	ws := make([]*watcherState, *watchers)
	ifs := make([]watch.Interface, *watchers)
	for i := range ws {
		w := &watcherState{nsIdx: -1, counts: make([]uint8, total+16)}
		if !all {
			w.nsIdx = i % len(nss)
			w.ns = nss[w.nsIdx]
		}
		ws[i] = w
		cs, err := newClient(s, ct)
		if err != nil {
			b.Fatal(err)
		}
		l, err := cs.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		wi, err := cs.CoreV1().Events(w.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		ifs[i] = wi
	}
	var wwg sync.WaitGroup
	for i, w := range ws {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			receive(w, ifs[i], run, warm, &stopping)
		}()
	}
	defer func() {
		for _, wi := range ifs {
			wi.Stop()
		}
		wwg.Wait()
	}()

	// The writer: events handed out at the rate to a pool of senders.
	senders, err := newClients(s, *watchSenders, ct)
	if err != nil {
		b.Fatal(err)
	}
	created := make([]atomic.Bool, total)
	var createErrs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var createLat latencies
	clk := startClock(b)
	sent, maxLag, writeElapsed := pace(senders, *watchRate, *watchDuration, func(cs *kubernetes.Clientset) {
		ev, seq := f.next()
		ev.Annotations[annRun] = run
		stamp(ev)
		t := time.Now()
		_, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		d := time.Since(t)
		mu.Lock()
		createLat = append(createLat, d)
		mu.Unlock()
		if err != nil {
			createErrs.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		created[seq].Store(true)
	})

	// Wait for every delivery that should come.
	want := make([]int64, len(ws))
	for seq := range total {
		if !created[seq].Load() {
			continue
		}
		for i, w := range ws {
			if w.nsIdx < 0 || seq%len(nss) == w.nsIdx {
				want[i]++
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for i, w := range ws {
			if w.received.Load() < want[i] && !w.closed.Load() {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := clk.stop(b)
	var closedEarly int
	for _, w := range ws {
		if w.closed.Load() {
			closedEarly++
		}
	}
	stopping.Store(true)
	for _, wi := range ifs {
		wi.Stop()
	}
	wwg.Wait()

	var missed, dups, unexpected, foreign, deliveries int64
	watchErrs := 0
	var lat latencies
	for i, w := range ws {
		for seq := range total {
			c := int64(w.counts[seq])
			expected := created[seq].Load() && (w.nsIdx < 0 || seq%len(nss) == w.nsIdx)
			switch {
			case expected && c == 0:
				missed++
			case expected && c > 1:
				dups += c - 1
			case !expected && c > 0:
				unexpected += c
			}
			deliveries += c
		}
		foreign += w.foreign
		lat = append(lat, w.lat...)
		if len(w.errors) > 0 {
			watchErrs += len(w.errors)
			b.Logf("WARNING: watcher %d: %d errors, first: %s", i, len(w.errors), w.errors[0])
		}
	}
	// Server misbehaviour is reported, not failed on: a failed benchmark
	// prints no metrics. missed, dups, unexpected, closed-early and errors
	// must all be 0 for a valid run.
	if n := createErrs.Load(); n > 0 {
		b.Logf("WARNING: %d of %d creates failed, first: %v", n, sent, firstErr.Load())
	}
	if missed > 0 || dups > 0 || unexpected > 0 || closedEarly > 0 {
		b.Logf("WARNING: %d deliveries missed (not there 15s after the last create), %d duplicated, %d unexpected, %d watches ended early",
			missed, dups, unexpected, closedEarly)
	}
	b.ReportMetric(0, "ns/op")
	reportLatency(b, "watch", lat)
	reportLatency(b, "create", createLat)
	var ok int
	for seq := range created {
		if created[seq].Load() {
			ok++
		}
	}
	b.ReportMetric(float64(ok)/writeElapsed.Seconds(), "creates/s")
	b.ReportMetric(float64(deliveries)/m.elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(ms(maxLag), "pace-lag-max-ms")
	b.ReportMetric(float64(missed), "missed")
	b.ReportMetric(float64(dups), "dups")
	b.ReportMetric(float64(unexpected), "unexpected")
	b.ReportMetric(float64(closedEarly), "closed-early")
	b.ReportMetric(float64(createErrs.Load()), "errors")
	b.ReportMetric(float64(watchErrs), "watch-errors")
	if foreign > 0 {
		b.Logf("%d deliveries of events of an earlier run ignored", foreign)
	}
	m.report(b, float64(ok), "create")
	s.reportMemory(b)
}

// annRun names the run an event belongs to, so that a watcher can tell
// this run's events from an earlier variant's still being delivered.
const annRun = "bench.eventpipe.io/run"

// receive records w's deliveries until the watch ends.
func receive(w *watcherState, wi watch.Interface, run string, warm uint64, stopping *atomic.Bool) {
	defer w.closed.Store(true)
	for e := range wi.ResultChan() {
		now := time.Now()
		switch e.Type {
		case watch.Added, watch.Modified:
		case watch.Bookmark:
			continue
		case watch.Error:
			if stopping.Load() {
				continue
			}
			w.errors = append(w.errors, fmt.Sprintf("%v", e.Object))
			continue
		default:
			w.errors = append(w.errors, fmt.Sprintf("unexpected %s", e.Type))
			continue
		}
		ev, ok := e.Object.(*corev1.Event)
		if !ok {
			w.errors = append(w.errors, fmt.Sprintf("unexpected %T", e.Object))
			continue
		}
		if ev.Annotations[annRun] != run {
			w.foreign++
			continue
		}
		seq, err1 := strconv.ParseUint(ev.Annotations[annSeq], 10, 64)
		sent, err2 := strconv.ParseInt(ev.Annotations[annSent], 10, 64)
		if err1 != nil || err2 != nil || seq >= uint64(len(w.counts)) {
			w.errors = append(w.errors, "bad annotations on "+ev.Name)
			continue
		}
		if w.counts[seq] < 255 {
			w.counts[seq]++
		}
		if seq >= warm {
			w.lat = append(w.lat, now.Sub(time.Unix(0, sent)))
		}
		w.received.Add(1)
	}
}
