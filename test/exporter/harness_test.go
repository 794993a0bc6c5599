// Package exporter runs `eventpipe export` as a subprocess against a real
// kube-apiserver 1.37 + etcd (internal/kubetest) and a real eventpipe
// (JetStream, writer, ClickHouse: internal/devenv), and checks that what
// client-go recorders write in the source arrives in eventpipe once and
// unchanged, across kill -9, leader failover and a forced 410 (issue 7).
package exporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// TestMain removes the binary eventpipeBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// eventpipeBinary builds ./cmd/eventpipe once per test binary: the exporter
// must run as a process of its own so that it can be killed with SIGKILL.
func eventpipeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eventpipe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = devtest.BuildEventpipe(dir)
	})
	require.NoError(t, buildErr)
	return binPath
}

// proc is one `eventpipe export` process.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
	log     string
	logFrom int64  // where the current process's lines start in log
	metrics string // http://127.0.0.1:PORT
}

// readyTimeout bounds every wait for an exporter process to get somewhere:
// starting, taking the lease, exporting.
const readyTimeout = 60 * time.Second

func startExporter(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			lines := strings.Split(string(b), "\n")
			t.Logf("the end of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	p.start()
	return p
}

func (p *proc) start() {
	p.t.Helper()
	port := devtest.FreePort(p.t)
	p.metrics = "http://127.0.0.1:" + strconv.Itoa(port)
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(p.t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(p.t, err)
	p.logFrom = fi.Size()
	args := append([]string{"export", "--metrics.addr", "127.0.0.1:" + strconv.Itoa(port), "--log-level", "info"}, p.args...)
	p.cmd = exec.Command(eventpipeBinary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Its own process group, and killed with the test binary.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(p.t, p.cmd.Start())
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.cmd, p.done)
}

// kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// get fetches a path of the exporter's metrics server.
func (p *proc) get(path string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(p.metrics + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitFor polls cond every 100ms until it holds, and fails the test when
// the process exits first or readyTimeout passes; what is how the failure
// names the condition, why what cond last said about it.
func (p *proc) waitFor(what string, cond func() (ok bool, why string)) {
	p.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if p.exited() {
			p.t.Fatalf("exporter %s exited before %s; see its log %s", p.name, what, p.log)
		}
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("exporter %s: not %s after %s: %s", p.name, what, readyTimeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until /readyz answers 200 and the exporter exports
// (leader gauge 1) with its watch open.
func (p *proc) waitReady() {
	p.t.Helper()
	p.waitFor("ready and exporting", func() (bool, string) {
		if code, body, err := p.get("/readyz"); err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/readyz: %d %q %v", code, body, err)
		}
		leader, err := p.metricValue("eventpipe_exporter_leader")
		if err != nil || leader != 1 {
			return false, fmt.Sprintf("leader gauge %v (%v)", leader, err)
		}
		connected, err := p.metricValue("eventpipe_exporter_watch_connected")
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
		if !p.logged(`msg="standing by"`) {
			return false, "it has not logged standing by"
		}
		if code, body, err := p.get("/readyz"); err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/readyz: %d %q %v", code, body, err)
		}
		_, err := p.metricValue("eventpipe_exporter_leader")
		return err == nil, fmt.Sprintf("leader gauge: %v", err)
	})
}

// waitPublished waits until the current process has handed n states of its
// own to JetStream (eventpipe_exporter_events_published_total, which starts
// at 0 with every process).
func (p *proc) waitPublished(n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%d states published", n), func() (bool, string) {
		v, err := p.metricValue("eventpipe_exporter_events_published_total")
		return err == nil && v >= float64(n), fmt.Sprintf("published %v (%v)", v, err)
	})
}

// logged reports whether the current process has written a log line
// containing s.
func (p *proc) logged(s string) bool {
	b, err := os.ReadFile(p.log)
	if err != nil || int64(len(b)) < p.logFrom {
		return false
	}
	return strings.Contains(string(b[p.logFrom:]), s)
}

// metric returns the value of a metric line (name with labels, exactly as
// exposed), or -1 when it is absent or the endpoint does not answer: for
// polling.
func (p *proc) metric(series string) float64 {
	v, err := p.metricValue(series)
	if err != nil {
		return -1
	}
	return v
}

// mustMetric returns the value of a metric line, and fails the test when
// the endpoint does not answer or does not have the series.
func (p *proc) mustMetric(series string) float64 {
	p.t.Helper()
	v, err := p.metricValue(series)
	require.NoError(p.t, err)
	return v
}

// metricValue returns the value of a metric line (name with labels,
// exactly as exposed); an error when the endpoint does not answer or the
// series is absent.
func (p *proc) metricValue(series string) (float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil {
		return 0, fmt.Errorf("exporter %s: /metrics: %w", p.name, err)
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("exporter %s: /metrics answered %d", p.name, code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("exporter %s: /metrics: %w", p.name, err)
	}
	return 0, fmt.Errorf("exporter %s: no series %s in /metrics", p.name, series)
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
