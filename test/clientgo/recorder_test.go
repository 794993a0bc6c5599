package clientgo

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// The scenario's objects. UIDs are fixed so that involvedObject/regarding
// are the same on both servers. Every name starts with objPrefix, so the
// comparison ignores events anything else writes.
const (
	objPrefix  = "cg-"
	recorderNS = metav1.NamespaceDefault
	burstSize  = 30
	controller = "test-controller"
)

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: recorderNS, Name: objPrefix + name, UID: types.UID("uid-" + name)}}
}

// TestRecordersMatchKubeAPIServer drives client-go's two EventRecorders with
// the same bursts against kube-apiserver 1.37 and against eventpipe, and
// requires the same stored events: per (object, reason) the same number of
// Event objects with the same count / series.count, seen through both API
// groups, and the same sequence of sink calls (creates, patches).
//
// What is deterministic, from client-go v0.37's source:
//   - record (core/v1): one goroutine writes events in order through the
//     EventCorrelator: repeats of an identical event become PATCHes of
//     count; the spam filter lets 25 events per (source, object, type)
//     through (then one per 5 minutes); after 10 different messages for one
//     reason the aggregator folds further ones into a "(combined from
//     similar events)" event. A sentinel event written last therefore marks
//     the end of everything before it.
//   - events (events.k8s.io/v1): the first event of a key (type, action,
//     reason, controller, instance, regarding, related; not the note) is
//     created; the second sets series.count=2 by PATCH; later ones only
//     count in the broadcaster's cache until the series is finished (6
//     minutes of silence) or refreshed (30 minutes). Neither timer takes a
//     fake clock (finishSeries reads time.Now; the clock-taking constructor
//     is unexported), so the stored series.count after a burst is 2. The
//     first event of a key is awaited before the rest are sent, so the
//     create/patch race (which client-go resolves by retrying after ~10s)
//     does not happen.
func TestRecordersMatchKubeAPIServer(t *testing.T) {
	start := time.Now()
	kube := kubetest.StartCluster(t, kubetest.Options{})
	ep := devtest.New(t)
	t.Logf("servers up in %s (kube-apiserver %s)", time.Since(start).Round(time.Millisecond), kube.StartDuration.Round(time.Millisecond))

	want := runRecorders(t, "kube-apiserver", kube.Config)
	got := runRecorders(t, "eventpipe", ep.Cfg)

	// Sanity: the scenario shows what it is meant to show (on the reference).
	require.Equal(t, []string{`count=25 type=Warning series=- msg="Back-off restarting failed container"`},
		terse(want.core["Pod/cg-core-burst BackOff"]), "core recorder burst (spam filter: 25 per source+object+type)")
	require.Len(t, want.core["Pod/cg-core-aggregate FailedScheduling"], 10, "9 single events and one aggregate")
	require.Equal(t, []string{`count=0 type=Warning series=2 msg="Back-off restarting failed container"`},
		terse(want.core["Pod/cg-ev-burst BackOff"]), "events recorder burst")

	require.Equal(t, want.calls, got.calls, "sink calls (what the recorders sent and how the servers answered)")
	require.Equal(t, want.core, got.core, "core/v1 view of the stored events")
	require.Equal(t, want.events, got.events, "events.k8s.io/v1 view of the stored events")
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// terse keeps the fields the sanity checks look at.
func terse(rows []coreRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("count=%d type=%s series=%s msg=%q", r.Count, r.Type, r.Series, r.Message))
	}
	return out
}

type coreRow struct {
	Count               int32
	Type                string
	Message             string
	Series              string
	Source              corev1.EventSource
	ReportingController string
	ReportingInstance   string
	Action              string
	Related             string
}

// seriesCount renders a series as its count, "-" when there is none.
func seriesCount(s any) string {
	switch v := s.(type) {
	case *corev1.EventSeries:
		if v != nil {
			return strconv.Itoa(int(v.Count))
		}
	case *eventsv1.EventSeries:
		if v != nil {
			return strconv.Itoa(int(v.Count))
		}
	}
	return "-"
}

type eventsRow struct {
	Type                string
	Note                string
	Series              string
	DeprecatedCount     int32
	DeprecatedSource    corev1.EventSource
	ReportingController string
	ReportingInstance   string
	Action              string
	Related             string
}

type outcome struct {
	// calls lists the sink calls per recorder, in a canonical order.
	calls  []string
	core   map[string][]coreRow
	events map[string][]eventsRow
}

func runRecorders(t *testing.T, server string, cfg *rest.Config) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := devtest.NewClient(t, cfg)
	start := time.Now()
	coreCalls, rv1 := recordCore(t, ctx, cs)
	evCalls, rv2 := recordEventsV1(t, ctx, cs)
	t.Logf("%s: recorders done in %s", server, time.Since(start).Round(time.Millisecond))

	// Read at least what the recorders were told is stored (eventpipe's
	// lists follow its index, which trails the log briefly).
	rv := strconv.FormatUint(max(rv1, rv2), 10)
	opts := metav1.ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}
	cl, err := cs.CoreV1().Events(recorderNS).List(ctx, opts)
	require.NoError(t, err, server)
	el, err := cs.EventsV1().Events(recorderNS).List(ctx, opts)
	require.NoError(t, err, server)

	o := outcome{calls: append(coreCalls, evCalls...), core: map[string][]coreRow{}, events: map[string][]eventsRow{}}
	for _, e := range cl.Items {
		k, ours := rowKey(e.InvolvedObject, e.Reason)
		if !ours {
			continue
		}
		require.False(t, e.LastTimestamp.Before(&e.FirstTimestamp), "%s: %s: lastTimestamp before firstTimestamp", server, e.Name)
		o.core[k] = append(o.core[k], coreRow{Count: e.Count, Type: e.Type, Message: e.Message, Source: e.Source,
			ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance, Action: e.Action,
			Series: seriesCount(e.Series), Related: refName(e.Related)})
	}
	for _, e := range el.Items {
		k, ours := rowKey(e.Regarding, e.Reason)
		if !ours {
			continue
		}
		o.events[k] = append(o.events[k], eventsRow{Type: e.Type, Note: e.Note, DeprecatedCount: e.DeprecatedCount,
			DeprecatedSource: e.DeprecatedSource, ReportingController: e.ReportingController,
			ReportingInstance: e.ReportingInstance, Action: e.Action, Series: seriesCount(e.Series), Related: refName(e.Related)})
	}
	sortRows(o.core)
	sortRows(o.events)
	t.Logf("%s: %d core/v1 and %d events.k8s.io/v1 events under test, at resourceVersion %s (list answered at %s)",
		server, len(cl.Items), len(el.Items), rv, cl.ResourceVersion)
	return o
}

// rowKey is the key an Event about object is compared under on both
// servers, and whether object is one of those the recorders wrote about
// (other Events in the namespace are not the test's).
func rowKey(object corev1.ObjectReference, reason string) (key string, ours bool) {
	if !strings.HasPrefix(object.Name, objPrefix) {
		return "", false
	}
	return object.Kind + "/" + object.Name + " " + reason, true
}

// refName is ref as Kind/name, or "" for no reference.
func refName(ref *corev1.ObjectReference) string {
	if ref == nil {
		return ""
	}
	return ref.Kind + "/" + ref.Name
}

// sortRows puts each key's rows in one order, so that outcomes compare
// whatever order the servers listed them in.
func sortRows[R any](rows map[string][]R) {
	for _, rs := range rows {
		sort.Slice(rs, func(i, j int) bool { return fmt.Sprint(rs[i]) < fmt.Sprint(rs[j]) })
	}
}

// callLog records the calls a sink made and how they ended.
type callLog struct {
	mu    sync.Mutex
	calls []string
	maxRV uint64
	// changed is closed and replaced after every call.
	changed chan struct{}
}

func newCallLog() *callLog { return &callLog{changed: make(chan struct{})} }

func (l *callLog) add(verb, object, reason, rv string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "error: " + err.Error()
	}
	l.calls = append(l.calls, fmt.Sprintf("%s %s %s: %s", verb, object, reason, outcome))
	if v, perr := strconv.ParseUint(rv, 10, 64); perr == nil && err == nil && v > l.maxRV {
		l.maxRV = v
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// count returns how many calls equal line.
func (l *callLog) count(line string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c == line {
			n++
		}
	}
	return n
}

// await waits until f holds for the calls made so far.
func (l *callLog) await(t *testing.T, ctx context.Context, what string, f func() bool) {
	t.Helper()
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if f() {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("waiting for %s: %v; calls so far:\n%v", what, ctx.Err(), l.calls)
		}
	}
}

// snapshot returns the calls (in a canonical order when sorted: the events
// recorder's goroutines may run in any order, the core recorder's run in
// order) and the highest resourceVersion answered.
func (l *callLog) snapshot(sorted bool) ([]string, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.calls...)
	if sorted {
		sort.Strings(out)
	}
	return out, l.maxRV
}

// coreSink is client-go's core/v1 sink, logging its calls.
type coreSink struct {
	record.EventSink
	log *callLog
}

func (s *coreSink) Create(e *corev1.Event) (*corev1.Event, error) {
	r, err := s.EventSink.Create(e)
	s.log.add("core create", e.InvolvedObject.Name, e.Reason, coreRV(r), err)
	return r, err
}

func (s *coreSink) Update(e *corev1.Event) (*corev1.Event, error) {
	r, err := s.EventSink.Update(e)
	s.log.add("core update", e.InvolvedObject.Name, e.Reason, coreRV(r), err)
	return r, err
}

func (s *coreSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	r, err := s.EventSink.Patch(e, data)
	s.log.add("core patch", e.InvolvedObject.Name, e.Reason, coreRV(r), err)
	return r, err
}

// eventsSink is client-go's events.k8s.io/v1 sink, logging its calls.
type eventsSink struct {
	events.EventSink
	log *callLog
}

func (s *eventsSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	r, err := s.EventSink.Create(ctx, e)
	s.log.add("events create", e.Regarding.Name, e.Reason, eventsRV(r), err)
	return r, err
}

func (s *eventsSink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	r, err := s.EventSink.Update(ctx, e)
	s.log.add("events update", e.Regarding.Name, e.Reason, eventsRV(r), err)
	return r, err
}

func (s *eventsSink) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	r, err := s.EventSink.Patch(ctx, e, data)
	s.log.add("events patch", e.Regarding.Name, e.Reason, eventsRV(r), err)
	return r, err
}

func coreRV(e *corev1.Event) string {
	if e == nil {
		return ""
	}
	return e.ResourceVersion
}

func eventsRV(e *eventsv1.Event) string {
	if e == nil {
		return ""
	}
	return e.ResourceVersion
}

// recordCore runs the core/v1 recorder's scenario and returns its calls and
// the highest resourceVersion the server answered with.
func recordCore(t *testing.T, ctx context.Context, cs kubernetes.Interface) ([]string, uint64) {
	t.Helper()
	log := newCallLog()
	b := record.NewBroadcaster(record.WithContext(ctx))
	defer b.Shutdown()
	b.StartRecordingToSink(&coreSink{EventSink: &typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")}, log: log})
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: controller})

	burst, agg, life, sentinel := pod("core-burst"), pod("core-aggregate"), pod("core-life"), pod("core-sentinel")
	for range burstSize {
		rec.Event(burst, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
	}
	for i := range 12 {
		rec.Eventf(agg, corev1.EventTypeWarning, "FailedScheduling", "0/%d nodes are available: %d Insufficient cpu.", i+1, i+1)
	}
	for _, r := range []string{"Scheduled", "Pulling", "Pulled", "Pulled", "Created", "Pulled", "Started"} {
		rec.Event(life, corev1.EventTypeNormal, r, "step "+r)
	}
	rec.Event(sentinel, corev1.EventTypeNormal, "Done", "the end")
	// One goroutine writes in order, so once the sentinel is stored all
	// before it are.
	log.await(t, ctx, "the core sentinel", func() bool {
		return log.count("core create "+sentinel.Name+" Done: ok") == 1
	})
	return log.snapshot(false)
}

// recordEventsV1 runs the events.k8s.io/v1 recorder's scenario.
func recordEventsV1(t *testing.T, ctx context.Context, cs kubernetes.Interface) ([]string, uint64) {
	t.Helper()
	log := newCallLog()
	b := events.NewBroadcaster(&eventsSink{EventSink: &events.EventSinkImpl{Interface: cs.EventsV1()}, log: log})
	var delivered sync.WaitGroup
	stopWatcher, err := b.StartEventWatcher(func(runtime.Object) { delivered.Done() })
	require.NoError(t, err)
	defer stopWatcher()
	stop := make(chan struct{})
	b.StartRecordingToSink(stop)
	defer func() {
		close(stop)
		b.Shutdown()
	}()
	rec := b.NewRecorder(scheme.Scheme, controller)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "uid-node-1"}}
	emit := func(regarding runtime.Object, related runtime.Object, typ, reason, action, note string, args ...any) {
		delivered.Add(1)
		rec.Eventf(regarding, related, typ, reason, action, note, args...)
	}
	ok := func(verb string, o *corev1.Pod, reason string) func() bool {
		return func() bool { return log.count(verb+" "+o.Name+" "+reason+": ok") == 1 }
	}

	// A burst of one event: the first is awaited, then the rest.
	burst := pod("ev-burst")
	emit(burst, nil, corev1.EventTypeWarning, "BackOff", "Restarting", "Back-off restarting failed container")
	log.await(t, ctx, "the burst's create", ok("events create", burst, "BackOff"))
	for range burstSize - 1 {
		emit(burst, nil, corev1.EventTypeWarning, "BackOff", "Restarting", "Back-off restarting failed container")
	}
	// Same key, other notes: the note is not part of the key.
	notes := pod("ev-notes")
	emit(notes, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "0/1 nodes are available")
	log.await(t, ctx, "the notes' create", ok("events create", notes, "FailedScheduling"))
	for i := 2; i <= 5; i++ {
		emit(notes, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "0/%d nodes are available", i)
	}
	// Distinct events, one with a related object.
	life := pod("ev-life")
	emit(life, node, corev1.EventTypeNormal, "Scheduled", "Binding", "Successfully assigned to node-1")
	for _, r := range []string{"Pulling", "Pulled", "Created", "Started"} {
		emit(life, nil, corev1.EventTypeNormal, r, "Starting", "step "+r)
	}
	log.await(t, ctx, "every expected call", func() bool {
		done := ok("events patch", burst, "BackOff")() && ok("events patch", notes, "FailedScheduling")()
		for _, r := range []string{"Scheduled", "Pulling", "Pulled", "Created", "Started"} {
			done = done && ok("events create", life, r)()
		}
		return done
	})
	// Every event reached the broadcaster; later ones of a series only count
	// in its cache, so after a short grace no more calls may come.
	waited := make(chan struct{})
	go func() { delivered.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		t.Fatal("events were not delivered to the broadcaster's watchers")
	}
	before, _ := log.snapshot(true)
	time.Sleep(300 * time.Millisecond)
	calls, rv := log.snapshot(true)
	require.Equal(t, before, calls, "no calls after the expected ones")
	return calls, rv
}
