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

	"github.com/eventpipe/eventpipe/bench/internal/load"
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
// By default the watchers read the stream client-go asks for frame by
// frame and decode only each event's type, name and annotations
// (-apibench.watch-client=raw); with client-go's decoder, the 100 watchers
// take a large share of the cores the server runs on.
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
	lat      load.Latencies
	closed   atomic.Bool
}

func benchWatch(b *testing.B, s *server, all bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ct := contentType(b)
	total := int(float64(*watchRate) * watchDuration.Seconds())
	warm := uint64(float64(*watchRate) * watchWarmup.Seconds())
	f := load.NewEventFactory()
	run := strconv.FormatUint(f.Nonce, 10)
	nss := load.Namespaces()

	// Errors that come of stopping the watches are not the server's.
	var stopping atomic.Bool
	defer stopping.Store(true)

	// Watchers: list (limit 1) for a resourceVersion, then watch from it.
	ws := make([]*watcherState, *watchers)
	streams := make([]eventStream, *watchers)
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
		if streams[i], err = openWatch(ctx, s, cs, ct, w.ns, l.ResourceVersion); err != nil {
			b.Fatal(err)
		}
	}
	var wwg sync.WaitGroup
	for i, w := range ws {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			streams[i].receive(w, run, warm, &stopping)
		}()
	}
	defer func() {
		for _, st := range streams {
			st.stop()
		}
		wwg.Wait()
	}()

	// The writer: events handed out at the rate to a pool of senders.
	senders, err := newCreators(s, *watchSenders, ct)
	if err != nil {
		b.Fatal(err)
	}
	created := make([]atomic.Bool, total)
	var createErrs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var createLat load.Latencies
	clk := startClock(b)
	sent, maxLag, writeElapsed := pace(senders, *watchRate, *watchDuration, func(c load.Creator) {
		ev, seq := f.Next()
		ev.Annotations[annRun] = run
		load.Stamp(ev)
		t := time.Now()
		err := c.Create(ctx, ev)
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
	for _, st := range streams {
		st.stop()
	}
	wwg.Wait()

	var missed, dups, unexpected, foreign, deliveries int64
	watchErrs := 0
	var lat load.Latencies
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
	b.ReportMetric(load.MS(maxLag), "pace-lag-max-ms")
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

// note records one delivery of type typ at now, of an event with the given
// name and benchmark annotations. Events of other runs are counted as
// foreign; deliveries of the warm-up are counted but left out of the
// latencies.
func (w *watcherState) note(typ watch.EventType, name []byte, ann benchAnnotations, now time.Time, run string, warm uint64) {
	switch typ {
	case watch.Added, watch.Modified:
	default:
		w.errors = append(w.errors, fmt.Sprintf("unexpected %s", typ))
		return
	}
	if string(ann.run) != run {
		w.foreign++
		return
	}
	seq, ok1 := parseDecimal(ann.seq)
	sent, ok2 := parseDecimal(ann.sent)
	if !ok1 || !ok2 || seq >= uint64(len(w.counts)) {
		w.errors = append(w.errors, "bad annotations on "+string(name))
		return
	}
	if w.counts[seq] < 255 {
		w.counts[seq]++
	}
	if seq >= warm {
		w.lat = append(w.lat, now.Sub(time.Unix(0, int64(sent))))
	}
	w.received.Add(1)
}

// parseDecimal parses b as a decimal number of up to 19 digits without
// allocating (as strconv.ParseUint(string(b)) would).
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// clientGoStream is a watch read by client-go's watch decoder, as an
// informer reads it: every event decoded into a corev1.Event.
type clientGoStream struct{ wi watch.Interface }

func (c clientGoStream) stop() { c.wi.Stop() }

func (c clientGoStream) receive(w *watcherState, run string, warm uint64, stopping *atomic.Bool) {
	defer w.closed.Store(true)
	for e := range c.wi.ResultChan() {
		now := time.Now()
		switch e.Type {
		case watch.Bookmark:
			continue
		case watch.Error:
			// Stopping the watch makes client-go deliver an error event
			// (the response body was closed); those are not the server's.
			if !stopping.Load() {
				w.errors = append(w.errors, fmt.Sprintf("%v", e.Object))
			}
			continue
		}
		ev, ok := e.Object.(*corev1.Event)
		if !ok {
			w.errors = append(w.errors, fmt.Sprintf("unexpected %T", e.Object))
			continue
		}
		w.note(e.Type, []byte(ev.Name), annotationsOf(ev.Annotations), now, run, warm)
	}
}
