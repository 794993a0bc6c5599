// Package exporter runs `eventpipe export` as a subprocess against a real
// kube-apiserver 1.37 + etcd (internal/kubetest) and a real eventpipe
// (JetStream, writer, ClickHouse: internal/devenv), and checks that what
// client-go recorders write in the source arrives in eventpipe once and
// unchanged, across kill -9, leader failover and a forced 410 (issue 7).
package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/exporter"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// TestMain removes the eventpipe binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	devtest.RemoveBinary()
	os.Exit(code)
}

// proc is one `eventpipe export` process.
type proc struct {
	*devtest.Role
	t *testing.T
}

// readyTimeout bounds every wait for an exporter process to get somewhere:
// starting, taking the lease, exporting.
const readyTimeout = 60 * time.Second

func startExporter(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return &proc{devtest.StartRole(t, name, append([]string{"export"}, args...)...), t}
}

// waitFor polls cond until it holds, and fails the test when the process
// exits first or readyTimeout passes.
func (p *proc) waitFor(what string, cond func() (ok bool, why string)) {
	p.t.Helper()
	p.WaitFor(what, readyTimeout, cond)
}

// waitReady waits until /readyz answers 200 and the exporter exports
// (leader gauge 1) with its watch open.
func (p *proc) waitReady() {
	p.t.Helper()
	p.waitFor("ready and exporting", func() (bool, string) {
		if code, body, err := p.Get("/readyz"); err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/readyz: %d %q %v", code, body, err)
		}
		leader, err := p.Metric("eventpipe_exporter_leader")
		if err != nil || leader != 1 {
			return false, fmt.Sprintf("leader gauge %v (%v)", leader, err)
		}
		connected, err := p.Metric("eventpipe_exporter_watch_connected")
		return err == nil && connected == 1, fmt.Sprintf("watch_connected %v (%v)", connected, err)
	})
}

// waitStandby waits until the process stands by: it has seen another
// replica hold the lease (it logs "standing by"), /readyz answers 200 and
// its metrics endpoint serves the leader gauge. Before that a standby has
// no metrics to read.
func (p *proc) waitStandby() {
	p.t.Helper()
	p.waitFor("standing by", func() (bool, string) {
		if !p.Logged(`msg="standing by"`) {
			return false, "it has not logged standing by"
		}
		if code, body, err := p.Get("/readyz"); err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/readyz: %d %q %v", code, body, err)
		}
		_, err := p.Metric("eventpipe_exporter_leader")
		return err == nil, fmt.Sprintf("leader gauge: %v", err)
	})
}

// waitPublished waits until the current process has handed n states of its
// own to JetStream (eventpipe_exporter_events_published_total, which starts
// at 0 with every process).
func (p *proc) waitPublished(n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%d states published", n), func() (bool, string) {
		v, err := p.Metric("eventpipe_exporter_events_published_total")
		return err == nil && v >= float64(n), fmt.Sprintf("published %v (%v)", v, err)
	})
}

// metric returns the value of a metric line (name with labels, exactly as
// exposed), or -1 when it is absent or the endpoint does not answer: for
// polling.
func (p *proc) metric(series string) float64 {
	v, err := p.Metric(series)
	if err != nil {
		return -1
	}
	return v
}

// mustMetric returns the value of a metric line, and fails the test when
// the endpoint does not answer or does not have the series.
func (p *proc) mustMetric(series string) float64 {
	p.t.Helper()
	v, err := p.Metric(series)
	require.NoError(p.t, err)
	return v
}

// stateKey identifies one state of one source Event: what must be stored
// exactly once.
type stateKey struct {
	uid     types.UID
	rv      string
	deleted bool
}

// oracle watches the source namespace from before anything is written and
// records every state: the ground truth the exporter is measured against.
type oracle struct {
	mu      sync.Mutex
	states  map[stateKey]bool
	latest  map[types.UID]*corev1.Event // final state of each event
	deleted map[types.UID]bool
	last    time.Time // when the last state arrived
	maxRV   uint64
}

func startOracle(t *testing.T, cs kubernetes.Interface, ns string) *oracle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, l.Items, "the scenario's namespace starts empty")
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, l.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Events(ns).Watch(ctx, o)
		},
	})
	require.NoError(t, err)
	t.Cleanup(rw.Stop)
	o := &oracle{states: map[stateKey]bool{}, latest: map[types.UID]*corev1.Event{}, deleted: map[types.UID]bool{}, last: time.Now()}
	go func() {
		for e := range rw.ResultChan() {
			ev, ok := e.Object.(*corev1.Event)
			if !ok {
				continue
			}
			rv, _ := exporter.ParseResourceVersion(ev.ResourceVersion)
			o.mu.Lock()
			o.states[stateKey{ev.UID, ev.ResourceVersion, e.Type == watch.Deleted}] = true
			o.latest[ev.UID] = ev
			if e.Type == watch.Deleted {
				o.deleted[ev.UID] = true
			}
			o.last = time.Now()
			o.maxRV = max(o.maxRV, rv)
			o.mu.Unlock()
		}
	}()
	return o
}

// quiet waits until the source has been quiet for a while: the recorders
// have sent everything they had queued.
func (o *oracle) quiet(t *testing.T) {
	t.Helper()
	// A write made just before the call may not have reached the watch
	// yet, so quiet means three seconds without states since the call.
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		o.mu.Lock()
		idle := time.Since(maxTime(o.last, start))
		o.mu.Unlock()
		if idle > 3*time.Second {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the source never went quiet")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// count is how many states of the source the oracle has seen.
func (o *oracle) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.states)
}

// waitStates waits until the oracle has seen at least n states: the source
// changed that much.
func (o *oracle) waitStates(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return o.count() >= n }, readyTimeout, 50*time.Millisecond,
		"the source never got to %d states", n)
}

func (o *oracle) snapshot() (states map[stateKey]bool, latest map[types.UID]*corev1.Event, deleted map[types.UID]bool, maxRV uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	states, latest, deleted = map[stateKey]bool{}, map[types.UID]*corev1.Event{}, map[types.UID]bool{}
	for k := range o.states {
		states[k] = true
	}
	for k, v := range o.latest {
		latest[k] = v.DeepCopy()
	}
	for k := range o.deleted {
		deleted[k] = true
	}
	return states, latest, deleted, o.maxRV
}

// normalize is what "the same content" means: the core/v1 object as the
// source served it, less resourceVersion and managedFields, with the
// exporter's source-cluster label and source-resourceVersion annotation
// taken off again.
func normalize(ev *corev1.Event) string {
	ev = ev.DeepCopy()
	ev.TypeMeta = metav1.TypeMeta{}
	ev.ResourceVersion = ""
	ev.ManagedFields = nil
	delete(ev.Labels, exporter.LabelSourceCluster)
	delete(ev.Annotations, exporter.AnnotationSourceResourceVersion)
	if len(ev.Labels) == 0 {
		ev.Labels = nil
	}
	if len(ev.Annotations) == 0 {
		ev.Annotations = nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic("BUG: an Event does not marshal: " + err.Error())
	}
	return string(b)
}

// checkExported compares eventpipe with the oracle. With allStates, every
// state the source went through must be stored exactly once (a resumable
// watch sees them all); without (after a 410 relist, which sees only the
// latest), the stored states must be a subset. Either way nothing is stored
// twice, every event's latest state has the same content, deleted events
// are deleted, and ClickHouse (through the writer) agrees.
func checkExported(t *testing.T, env *devenv.Env, o *oracle, sc scope.Scope, cluster string, allStates bool) {
	t.Helper()
	o.quiet(t)
	// Recorders retry some writes seconds later (client-go's events
	// recorder retries a series patch that raced its create), so the oracle
	// and the stream are compared until they agree, each time with the
	// oracle read after the stream: everything exported has been seen by
	// then, unless the oracle's own watch lags, which the next round fixes.
	var recs []*eventlog.Record
	var got map[stateKey]int
	var wantStates map[stateKey]bool
	var latest map[types.UID]*corev1.Event
	var deleted map[types.UID]bool
	deadline := time.Now().Add(90 * time.Second)
	for {
		recs = eventtest.States(t, env.JS, eventlog.FilterSubject(&sc, nil))
		wantStates, latest, deleted, _ = o.snapshot()
		got = map[stateKey]int{}
		deletes := map[types.UID]int{}
		for _, r := range recs {
			got[stateKey{r.Event.UID, r.Event.Annotations[exporter.AnnotationSourceResourceVersion], r.Op == eventlog.OpDelete}]++
			if r.Op == eventlog.OpDelete {
				deletes[r.Event.UID]++
			}
		}
		done := true
		for k := range got {
			done = done && (wantStates[k] || relistedDelete(k, wantStates, deleted))
		}
		if allStates {
			for k := range wantStates {
				done = done && got[k] > 0
			}
		} else {
			for uid, ev := range latest {
				if deleted[uid] {
					// Watched, the delete carries the deletion's
					// resourceVersion; found by a relist, the last state's.
					done = done && deletes[uid] > 0
					continue
				}
				done = done && got[stateKey{uid, ev.ResourceVersion, false}] > 0
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.NotEmpty(t, latest, "the scenario wrote events")

	for _, r := range recs {
		k := stateKey{r.Event.UID, r.Event.Annotations[exporter.AnnotationSourceResourceVersion], r.Op == eventlog.OpDelete}
		require.Equal(t, 1, got[k], "state %+v of %s stored %d times", k, r.Event.Name, got[k])
		if !wantStates[k] && !relistedDelete(k, wantStates, deleted) {
			o.mu.Lock()
			now := o.latest[r.Event.UID]
			o.mu.Unlock()
			t.Fatalf("state %+v of %s (op %s) was never a state of the source: exported %s\nthe source's latest state (read later): %s",
				k, r.Event.Name, r.Op, normalize(r.Event), func() string {
					if now == nil {
						return "none"
					}
					return now.ResourceVersion + " " + normalize(now)
				}())
		}
	}
	if allStates {
		var missing []stateKey
		for k := range wantStates {
			if got[k] == 0 {
				missing = append(missing, k)
			}
		}
		require.Empty(t, missing, "states of the source missing in the stream (of %d)", len(wantStates))
	}

	// Latest state per event, by stream order.
	last := map[types.UID]*eventlog.Record{}
	for _, r := range recs {
		last[r.Event.UID] = r
		require.Equal(t, cluster, r.Event.Labels[exporter.LabelSourceCluster])
		require.Equal(t, sc, r.Key.Scope)
	}
	require.Len(t, last, len(latest), "events in eventpipe = events created")
	live := 0
	for uid, ev := range latest {
		r := last[uid]
		require.NotNil(t, r, "event %s/%s missing", ev.Namespace, ev.Name)
		if deleted[uid] {
			require.Equal(t, eventlog.OpDelete, r.Op, "event %s was deleted in the source", ev.Name)
			continue
		}
		live++
		require.NotEqual(t, eventlog.OpDelete, r.Op)
		require.Equal(t, normalize(ev), normalize(r.Event), "content of %s", ev.Name)
	}

	// ClickHouse, once the writer has committed everything.
	var lastSeq uint64
	for _, r := range recs {
		lastSeq = max(lastSeq, r.Seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, env.Writer.WaitFor(ctx, lastSeq))
	// At the snapshot's last sequence, not the writer's watermark: a
	// recorder may still retry a write seconds later (client-go's events
	// recorder retries a series patch that raced its create after a
	// backoff), and ClickHouse must be compared with the same states as
	// the stream and the oracle above.
	rows, err := env.Store.List(ctx, chstore.ListQuery{LatestFilter: chstore.LatestFilter{Scope: &sc, AtSeq: lastSeq}})
	require.NoError(t, err)
	require.Len(t, rows, live, "live events in ClickHouse")
	for _, r := range rows {
		ev := latest[r.Event.UID]
		require.NotNil(t, ev, "ClickHouse holds %s, which the source never had", r.Event.Name)
		require.False(t, deleted[r.Event.UID])
		require.Equal(t, normalize(ev), normalize(r.Event), "ClickHouse content of %s", ev.Name)
	}
	t.Logf("%d source states, %d stored states, %d events (%d live)", len(wantStates), len(recs), len(latest), live)
}

// relistedDelete reports whether k is a delete that a relist exported for
// an event deleted while the exporter was not watching: it carries the
// source resourceVersion of the event's last state, not the deletion's,
// and the source did delete the event.
func relistedDelete(k stateKey, wantStates map[stateKey]bool, deleted map[types.UID]bool) bool {
	return k.deleted && deleted[k.uid] && wantStates[stateKey{k.uid, k.rv, false}]
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
