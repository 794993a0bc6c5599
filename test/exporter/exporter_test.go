package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/exporter"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// gen writes events into one namespace of the source cluster the way
// controllers do: client-go's core/v1 recorder (repeats become count
// patches) and events.k8s.io/v1 recorder (a repeat becomes a series), plus
// deletes of older events.
type gen struct {
	t    *testing.T
	cs   kubernetes.Interface
	ns   string
	core record.EventRecorder
	ev   events.EventRecorder

	mu      sync.Mutex
	round   int
	deletes bool
}

func newGen(t *testing.T, cs kubernetes.Interface, ns string) *gen {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cb := record.NewBroadcaster(record.WithContext(ctx))
	cb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(ns)})
	eb := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	require.NoError(t, eb.StartRecordingToSinkWithContext(ctx))
	return &gen{t: t, cs: cs, ns: ns,
		core: cb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "exporter-e2e", Host: "node-1"}),
		ev:   eb.NewRecorder(scheme.Scheme, "exporter-e2e.io/controller")}
}

func (g *gen) pod(round, i int) *corev1.Pod {
	name := fmt.Sprintf("pod-%d-%d", round, i)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: name, UID: types.UID("uid-" + g.ns + "-" + name)}}
}

// step writes one round: per pod a BackOff three times (count 3), a
// Pulled, and an events.k8s.io Scheduled twice (series 2); and deletes the
// Pulled events of the round before last, which no recorder touches again.
func (g *gen) step() {
	g.mu.Lock()
	r := g.round
	g.round++
	g.mu.Unlock()
	for i := 0; i < 4; i++ {
		p := g.pod(r, i)
		for range 3 {
			g.core.Event(p, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
		}
		g.core.Eventf(p, corev1.EventTypeNormal, "Pulled", "Successfully pulled image in round %d", r)
		g.ev.Eventf(p, nil, corev1.EventTypeNormal, "Scheduled", "Binding", "assigned %s to node-%d", p.Name, i)
		g.ev.Eventf(p, nil, corev1.EventTypeNormal, "Scheduled", "Binding", "assigned %s to node-%d", p.Name, i)
	}
	if g.deletes {
		// The oldest Pulled event there is: the recorders lag behind the
		// rounds, and nothing records a Pulled event again, so no recorder
		// patches it after the delete.
		ctx := context.Background()
		l, err := g.cs.CoreV1().Events(g.ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Pulled", Limit: 1})
		if err == nil && len(l.Items) > 0 {
			_ = g.cs.CoreV1().Events(g.ns).Delete(ctx, l.Items[0].Name, metav1.DeleteOptions{})
		}
	}
}

// deletePulled deletes the Pulled event of a round's first pod, if it is
// there yet (the recorders send asynchronously).
func (g *gen) deletePulled(round int) int {
	ctx := context.Background()
	l, err := g.cs.CoreV1().Events(g.ns).List(ctx, metav1.ListOptions{
		FieldSelector: fmt.Sprintf("involvedObject.name=%s,reason=Pulled", g.pod(round, 0).Name)})
	if err != nil {
		return 0
	}
	n := 0
	for _, ev := range l.Items {
		if g.cs.CoreV1().Events(g.ns).Delete(ctx, ev.Name, metav1.DeleteOptions{}) == nil {
			n++
		}
	}
	return n
}

// run writes rounds every interval until stop is called.
func (g *gen) run(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			g.step()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// How long the kill and failover scenarios let things run, in states
// rather than time, so that a slow machine changes nothing: an exporter is
// killed once it has published exportedPerRun states of its own (a few of
// gen's rounds), and restarted once the source has changed by
// changedWhileDown states.
const (
	exportedPerRun   = 100
	changedWhileDown = 25
)

type scenario struct {
	kube    *kubetest.Cluster
	env     *devenv.Env
	cs      kubernetes.Interface
	ns      string
	cluster string
	sc      scope.Scope
}

// startReady starts one exporter for s, without leader election, and
// waits until it serves.
func (s *scenario) startReady(t *testing.T) *proc {
	t.Helper()
	p := startExporter(t, "exporter", s.args()...)
	p.waitReady()
	return p
}

func (s *scenario) args(extra ...string) []string {
	return append([]string{
		"--exporter.kubeconfig", s.kube.Kubeconfig, "--nats.url", s.env.NATSURL,
		"--exporter.cluster-name", s.cluster, "--exporter.scope-type", s.sc.Type, "--exporter.scope-name", s.sc.Name,
		"--exporter.namespaces", s.ns, "--exporter.checkpoint-interval", "200ms",
	}, extra...)
}

// TestExporter runs the scenarios of issue 7 against one kube-apiserver
// (without watch cache, so that an old resourceVersion is answered by etcd
// itself and compaction makes it 410 at once) and one eventpipe; each
// scenario has its own namespace, tenant and cluster name.
func TestExporter(t *testing.T) {
	built := make(chan struct{})
	go func() { defer close(built); devtest.Binary(t) }()
	kube := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: []string{"--watch-cache=false"}})
	env := devtest.New(t).Env
	<-built
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	// newScenario gives a subtest its own namespace, cluster name and
	// tenant, a generator writing Events there and an oracle recording what
	// the apiserver holds, so subtests never see each other's Events.
	newScenario := func(t *testing.T, name string) (*scenario, *gen, *oracle) {
		s := &scenario{kube: kube, env: env, cs: cs, ns: name, cluster: name + "-cluster",
			sc: scope.Scope{Type: scope.TypeProject, Name: name}}
		return s, newGen(t, cs, s.ns), startOracle(t, cs, s.ns)
	}

	t.Run("export", func(t *testing.T) {
		s, g, o := newScenario(t, "basic")
		p := s.startReady(t)
		for range 8 {
			g.step()
			time.Sleep(50 * time.Millisecond)
		}
		o.quiet(t)
		deleted := 0
		for r := range 4 {
			deleted += g.deletePulled(r)
		}
		require.Equal(t, 4, deleted)
		g.step() // and more counts growing after the deletes
		checkExported(t, env, o, s.sc, s.cluster, true)
		code, body, err := p.Get("/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, body)
		require.Greater(t, p.mustMetric("eventpipe_exporter_events_published_total"), 0.0)
		// The resume point is written every 200ms once the last state is
		// acknowledged.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			age, err := p.Metric("eventpipe_exporter_checkpoint_age_seconds")
			require.NoError(c, err)
			assert.Equal(c, 0.0, age)
		}, readyTimeout, 100*time.Millisecond, "everything read is checkpointed once quiet")
		checkLag(t, env, p, s.sc)
	})

	t.Run("kill -9 and restart while events keep coming", func(t *testing.T) {
		s, g, o := newScenario(t, "crash")
		p := s.startReady(t)
		g.deletes = true
		stop := g.run(100 * time.Millisecond)
		for range 3 {
			// Killed while exporting: it has handed states of its own
			// on, and more keep coming.
			p.waitPublished(exportedPerRun)
			p.Kill()
			// The source changes while no exporter runs.
			o.waitStates(t, o.count()+changedWhileDown)
			p.Start()
			p.waitReady()
		}
		p.waitPublished(exportedPerRun)
		stop()
		checkExported(t, env, o, s.sc, s.cluster, true)
	})

	t.Run("leader failover", func(t *testing.T) {
		s, g, o := newScenario(t, "ha")
		le := func(id string) []string {
			return s.args("--exporter.leader-elect", "--exporter.leader-elect.namespace", s.ns, "--exporter.leader-elect.identity", id,
				"--exporter.leader-elect.lease-duration", "3s", "--exporter.leader-elect.renew-deadline", "2s", "--exporter.leader-elect.retry-period", "500ms")
		}
		replicas := map[string]*proc{"a": startExporter(t, "a", le("a")...), "b": startExporter(t, "b", le("b")...)}
		leader := func() string {
			l, err := cs.CoordinationV1().Leases(s.ns).Get(context.Background(), "eventpipe-exporter-"+s.cluster, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil {
				return ""
			}
			return *l.Spec.HolderIdentity
		}
		require.Eventually(t, func() bool { return leader() != "" }, readyTimeout, 100*time.Millisecond)
		first := leader()
		replicas[first].waitReady()
		standby := map[string]string{"a": "b", "b": "a"}[first]
		// The standby may still be starting: its metrics mean something
		// once it has seen the leader's lease and serves them.
		replicas[standby].waitStandby()
		require.Equal(t, 0.0, replicas[standby].mustMetric("eventpipe_exporter_leader"), "one replica exports")
		require.Equal(t, 1.0, replicas[first].mustMetric("eventpipe_exporter_leader"), "one replica exports")
		code, body, err := replicas[standby].Get("/readyz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "a standby is ready: %s", body)

		g.deletes = true
		stop := g.run(100 * time.Millisecond)
		// The leader dies while it exports.
		replicas[first].waitPublished(exportedPerRun)
		replicas[first].Kill()
		require.Eventually(t, func() bool { return leader() == standby }, readyTimeout, 100*time.Millisecond)
		replicas[standby].waitReady()
		// The new leader exports what keeps coming.
		replicas[standby].waitPublished(exportedPerRun)
		stop()
		checkExported(t, env, o, s.sc, s.cluster, true)
	})

	t.Run("resume point compacted away: 410 and relist", func(t *testing.T) {
		s, g, o := newScenario(t, "gone")
		p := s.startReady(t)
		for range 4 {
			g.step()
		}
		o.quiet(t)
		require.Equal(t, 1, g.deletePulled(0))
		checkExported(t, env, o, s.sc, s.cluster, true)
		// The resume point covers everything read (it is written every
		// 200ms).
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			age, err := p.Metric("eventpipe_exporter_checkpoint_age_seconds")
			require.NoError(c, err)
			assert.Equal(c, 0.0, age)
		}, readyTimeout, 100*time.Millisecond, "the resume point is written")
		p.Kill()
		// The resume point the restarted exporter will find.
		kv, err := env.JS.KeyValue(context.Background(), eventlog.StateBucket)
		require.NoError(t, err)
		entry, err := kv.Get(context.Background(), exporter.CheckpointKey(s.cluster, s.ns))
		require.NoError(t, err)
		checkpoint, err := exporter.ParseResourceVersion(string(entry.Value()))
		require.NoError(t, err)

		// While the exporter is down: new events, count updates and a
		// delete, then etcd compacts past the resume point, so that only
		// the relist can find out about them.
		for range 3 {
			g.step()
		}
		require.Equal(t, 1, g.deletePulled(1))
		o.quiet(t)
		compactEtcd(t, kube.EtcdURL)

		p.Start()
		p.waitReady()
		require.Eventually(t, func() bool { return p.metric(`eventpipe_exporter_relists_total{reason="expired"}`) >= 1 }, 30*time.Second, 200*time.Millisecond,
			"the exporter got 410 for its resume point and relisted")
		checkExported(t, env, o, s.sc, s.cluster, false)
		require.Equal(t, 1.0, p.mustMetric(`eventpipe_exporter_events_seen_total{type="missing"}`),
			"the relist found the one event deleted while the exporter was down")

		// The event deleted while the exporter was down counts too: its
		// delete is one state handed on.
		_, after, _, _ := o.snapshot()
		changed := 0
		for _, ev := range after {
			rv, err := exporter.ParseResourceVersion(ev.ResourceVersion)
			require.NoError(t, err)
			if rv > checkpoint {
				changed++
			}
		}
		require.Positive(t, changed)
		// A state the killed exporter published after its last checkpoint
		// is found in the stream and skipped instead.
		// The count may exceed changed by states handed on twice (a list
		// restarted after its continue token expired, a watch event racing
		// the list's end): JetStream deduplicates those by message id, and
		// checkExported above proves each state is stored once. What must
		// not happen is a relist that republishes the unchanged events.
		// A state is in the stream before the exporter has its
		// acknowledgement and counts it.
		var handed float64
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			published, err := p.Metric("eventpipe_exporter_events_published_total")
			require.NoError(c, err)
			handed = published + max(0, p.metric(`eventpipe_exporter_events_skipped_total{reason="stored"}`))
			assert.GreaterOrEqual(c, handed, float64(changed))
		}, readyTimeout, 100*time.Millisecond, "every state changed since the resume point is handed on")
		// How many go twice depends on timing (a busy machine gave 3); a
		// relist that republished the unchanged events would add every one
		// of them, so allow at most half as many.
		unchanged := len(after) - changed
		require.Greater(t, unchanged, 1, "the case needs unchanged events to tell a full republish apart")
		require.LessOrEqual(t, handed, float64(changed+unchanged/2),
			"after the relist only what changed since the resume point is published (%d changed of %d events)", changed, len(after))
	})
}

// checkLag checks eventpipe_exporter_lag_seconds against its meaning: now
// minus the newest last-observation time of the states p exported. p
// exported every state of scope sc and has its acknowledgements, so that
// time is the newest in the stream, and the lag read is that time's age
// when the metric was read: between its age before and after the read.
func checkLag(t *testing.T, env *devenv.Env, p *proc, sc scope.Scope) {
	t.Helper()
	newest := func() time.Time {
		var n time.Time
		for _, r := range eventtest.States(t, env.JS, eventlog.FilterSubject(&sc, nil)) {
			n = maxTime(n, chstore.LastObserved(r.Event, time.Time{}))
		}
		require.False(t, n.IsZero(), "the stream holds states with a time")
		return n
	}
	// A state a recorder sends late is in the stream a moment before the
	// exporter has the acknowledgement: read again then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := newest()
		from := time.Now()
		lag := p.mustMetric("eventpipe_exporter_lag_seconds")
		until := time.Now()
		// A millisecond for the text format's rounding.
		lo, hi := from.Sub(n).Seconds()-0.001, until.Sub(n).Seconds()+0.001
		if lo <= lag && lag <= hi {
			t.Logf("lag %.3fs: the newest exported state was observed at %s", lag, n.Format(time.RFC3339Nano))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventpipe_exporter_lag_seconds is %v; the newest exported state was observed at %s, so it should be between %.3f and %.3f",
				lag, n.Format(time.RFC3339Nano), lo, hi)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// compactEtcd compacts etcd's history up to its current revision through
// etcd's JSON gateway, as kube-apiserver's own compactor does every 5
// minutes: every older resourceVersion becomes 410 Gone.
func compactEtcd(t *testing.T, etcdURL string) {
	t.Helper()
	post := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		resp, err := http.Post(etcdURL+path, "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	// Any key: the answer's header carries the current revision.
	hdr := post("/v3/kv/range", map[string]any{"key": "AA=="})["header"].(map[string]any)
	rev := hdr["revision"]
	post("/v3/kv/compaction", map[string]any{"revision": rev, "physical": true})
	t.Logf("etcd compacted at revision %v", rev)
}
