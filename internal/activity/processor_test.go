package activity

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

type pipeline struct {
	t      *testing.T
	ns     *natstest.Server
	store  *chstore.Store
	pub    *eventlog.Publisher
	engine *Engine
	cfg    Config
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	ch := chtest.ForTest(t)
	ns := natstest.ForTest(t)
	ctx := context.Background()
	require.NoError(t, eventlog.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	require.NoError(t, audit.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.BatchWait = 20, 20*time.Millisecond
	require.NoError(t, Ensure(ctx, ns.JS, cfg.Stream))
	store := storetest.Migrated(t, ch)
	set, err := BuiltinSet()
	require.NoError(t, err)
	engine := NewEngine()
	for _, p := range set.Policies() {
		engine.Put(p)
	}
	return &pipeline{t: t, ns: ns, store: store, pub: eventlog.NewPublisher(ns.JS), engine: engine, cfg: cfg}
}

var alpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}

func (p *pipeline) publish(op eventlog.Op, ns, name string, count int32) uint64 {
	p.t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "api-5c9", APIVersion: "v1"},
		Reason:         "FailedMount", Type: corev1.EventTypeWarning,
		Message:        `MountVolume.SetUp failed for volume "data" : secret "data" not found`,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(now.Add(-time.Minute)), LastTimestamp: metav1.NewTime(now), Count: count,
	}
	seq, err := p.pub.Publish(context.Background(), &eventlog.Record{Key: eventlog.Key{Scope: alpha, Namespace: ns, Name: name}, Op: op, Event: ev},
		eventlog.PublishOptions{MsgID: fmt.Sprintf("%s/%s/%d/%d", ns, name, op, count)})
	require.NoError(p.t, err)
	return seq
}

// run starts a processor and an indexer until the returned stop is called.
func (p *pipeline) run(crash func() bool) (stop func(), idx *Indexer) {
	ctx, cancel := context.WithCancel(context.Background())
	m := NewMetrics(nil)
	proc := NewProcessor(p.ns.JS, p.engine, p.cfg, m, slog.New(slog.DiscardHandler))
	proc.crashAfterPublish = crash
	idx = NewIndexer(p.ns.JS, p.store, p.cfg, m, slog.New(slog.DiscardHandler))
	done := make(chan struct{}, 2)
	go func() { _ = proc.Run(ctx); done <- struct{}{} }()
	go func() { _ = idx.Run(ctx); done <- struct{}{} }()
	return func() { cancel(); <-done; <-done }, idx
}

// activities lists what the API would: latest state per activity.
func (p *pipeline) activities() map[string]int32 {
	p.t.Helper()
	rows, err := p.store.ListActivities(context.Background(), chstore.ActivityQuery{Scope: &alpha})
	require.NoError(p.t, err)
	out := map[string]int32{}
	for i := range rows {
		a, err := FromRow(&rows[i])
		require.NoError(p.t, err)
		_, dup := out[a.Namespace+"/"+a.Name]
		require.False(p.t, dup, "activity %s/%s listed twice", a.Namespace, a.Name)
		out[a.Namespace+"/"+a.Name] = a.Spec.Count
	}
	return out
}

func (p *pipeline) waitFor(want map[string]int32) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := p.activities()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			require.Equal(p.t, want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processed waits until the processor has recorded progress up to the
// EVENTS sequence seq: every state up to it is handled (an Activity state
// published, or nothing, for a delete) and its progress mark written.
func (p *pipeline) processed(seq uint64) {
	p.t.Helper()
	ctx := context.Background()
	kv, err := p.ns.JS.KeyValue(ctx, eventlog.StateBucket)
	require.NoError(p.t, err)
	require.EventuallyWithT(p.t, func(c *assert.CollectT) {
		e, err := kv.Get(ctx, ProgressKey)
		require.NoError(c, err, "progress mark")
		done, err := strconv.ParseUint(string(e.Value()), 10, 64)
		require.NoError(c, err)
		assert.GreaterOrEqual(c, done, seq, "the processor's progress")
	}, 20*time.Second, 20*time.Millisecond, "the processor never got to EVENTS sequence %d", seq)
}

// indexed waits until idx has committed every ACTIVITIES state published so
// far: after it, activities lists all of them.
func (p *pipeline) indexed(idx *Indexer) {
	p.t.Helper()
	last := p.lastActivitySeq()
	require.EventuallyWithT(p.t, func(c *assert.CollectT) {
		assert.GreaterOrEqual(c, idx.Watermark().Load(), last, "the indexer's watermark")
	}, 20*time.Second, 20*time.Millisecond, "the indexer never got to ACTIVITIES sequence %d", last)
}

// lastActivitySeq is the ACTIVITIES stream's last sequence.
func (p *pipeline) lastActivitySeq() uint64 {
	p.t.Helper()
	st, err := p.ns.JS.Stream(context.Background(), StreamName)
	require.NoError(p.t, err)
	info, err := st.Info(context.Background())
	require.NoError(p.t, err)
	return info.State.LastSeq
}

// activitySource is the EVENTS sequence the newest ACTIVITIES state of an
// event in alpha was built from.
func (p *pipeline) activitySource(ns, name string) uint64 {
	p.t.Helper()
	st, err := p.ns.JS.Stream(context.Background(), StreamName)
	require.NoError(p.t, err)
	m, err := st.GetLastMsgForSubject(context.Background(), Subject(Key{Scope: alpha, Namespace: ns, Name: name}))
	require.NoError(p.t, err)
	seq, err := strconv.ParseUint(m.Header.Get(HeaderSourceSeq), 10, 64)
	require.NoError(p.t, err)
	return seq
}

func TestBurstMakesOneActivity(t *testing.T) {
	p := newPipeline(t)
	stop, idx := p.run(nil)
	defer stop()
	p.publish(eventlog.OpCreate, "prod", "api-5c9.1", 1)
	var last uint64
	for c := int32(2); c <= 50; c++ {
		last = p.publish(eventlog.OpUpdate, "prod", "api-5c9.1", c)
	}
	p.waitFor(map[string]int32{"prod/api-5c9.1": 50})
	rows, err := p.store.ListActivities(context.Background(), chstore.ActivityQuery{Scope: &alpha})
	require.NoError(t, err)
	a, err := FromRow(&rows[0])
	require.NoError(t, err)
	require.Equal(t, "Pod api-5c9 could not mount volume data (FailedMount) — 50 times", a.Spec.Summary)
	require.Equal(t, "builtin-pod", a.Spec.Origin.Policy)
	require.Equal(t, "failed-mount", a.Spec.Origin.Rule)
	require.Equal(t, "kubelet", a.Spec.Actor.Name)

	require.Equal(t, last, p.activitySource("prod", "api-5c9.1"))

	// A delete keeps the Activity: the timeline keeps what happened. Once
	// the processor is past the delete, no Activity state came of it, and
	// with everything indexed the list still shows the last live state.
	states := p.lastActivitySeq()
	del := p.publish(eventlog.OpDelete, "prod", "api-5c9.1", 50)
	p.processed(del)
	require.Equal(t, states, p.lastActivitySeq(), "a delete publishes no Activity state")
	require.Equal(t, last, p.activitySource("prod", "api-5c9.1"), "the Activity still comes from the last update")
	p.indexed(idx)
	require.Equal(t, map[string]int32{"prod/api-5c9.1": 50}, p.activities())
}

// TestCrashRestartNeitherLosesNorDoubles stops the processor right after a
// batch is published and before its progress is recorded (the worst moment)
// several times while events keep coming, then checks every event has
// exactly one Activity in its latest state.
func TestCrashRestartNeitherLosesNorDoubles(t *testing.T) {
	p := newPipeline(t)
	want := map[string]int32{}
	var crashes atomic.Int32
	for round := 0; round < 4; round++ {
		crashed := make(chan struct{})
		var once atomic.Bool
		stop, _ := p.run(func() bool {
			// Crash after the first batch that has published, once enough
			// of this round's events are in flight.
			if once.CompareAndSwap(false, true) {
				close(crashed)
				return true
			}
			return false
		})
		for i := 0; i < 30; i++ {
			name := fmt.Sprintf("ev-%d-%d.x", round, i)
			p.publish(eventlog.OpCreate, "prod", name, 1)
			want["prod/"+name] = 1
			if i%3 == 0 {
				p.publish(eventlog.OpUpdate, "prod", name, 2)
				want["prod/"+name] = 2
			}
		}
		select {
		case <-crashed:
			crashes.Add(1)
		case <-time.After(10 * time.Second):
			t.Fatal("processor never published")
		}
		stop()
	}
	require.EqualValues(t, 4, crashes.Load())
	stop, _ := p.run(nil)
	defer stop()
	p.waitFor(want)

	// Each event state has at most one Activity state: republished ones
	// were deduplicated by their message ids.
	st, err := p.ns.JS.Stream(context.Background(), StreamName)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	states := 0
	for _, c := range want {
		states += int(c)
	}
	require.EqualValues(t, states, info.State.Msgs, "one activity state per event state")
}

func TestPolicyChangeAppliesToNewEvents(t *testing.T) {
	p := newPipeline(t)
	stop, _ := p.run(nil)
	defer stop()
	p.publish(eventlog.OpCreate, "prod", "before.1", 1)
	p.waitFor(map[string]int32{"prod/before.1": 1})
	custom := &Policy{Name: "custom", Kind: "Pod", Group: ""}
	pol, errs := CompileSpec(&customSpec, nil)
	require.Empty(t, errs)
	custom.Rules = pol.Rules
	p.engine.Put(custom)
	p.publish(eventlog.OpCreate, "prod", "after.1", 1)
	p.waitFor(map[string]int32{"prod/before.1": 1, "prod/after.1": 1})
	rows, err := p.store.ListActivities(context.Background(), chstore.ActivityQuery{Scope: &alpha})
	require.NoError(t, err)
	summaries := map[string]string{}
	for i := range rows {
		summaries[rows[i].Name] = rows[i].Summary
	}
	require.Equal(t, "custom: api-5c9", summaries["after.1"])
	require.Contains(t, summaries["before.1"], "could not mount volume data")
}

func TestReindexRebuildsWithCurrentPolicies(t *testing.T) {
	p := newPipeline(t)
	stop, idx := p.run(nil)
	defer stop()
	ctx := context.Background()
	r, err := eventlog.NewReader(ctx, p.ns.JS)
	require.NoError(t, err)
	var rows []chstore.Row
	for i, name := range []string{"a.1", "b.1"} {
		seq := p.publish(eventlog.OpCreate, "prod", name, int32(i+1))
		rec, err := r.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: alpha, Namespace: "prod", Name: name}))
		require.NoError(t, err)
		require.Equal(t, seq, rec.Seq)
		row, err := chstore.EncodeRow(rec, time.Now())
		require.NoError(t, err)
		rows = append(rows, row)
	}
	require.NoError(t, p.store.Insert(ctx, rows)) // what the writer would have stored
	p.waitFor(map[string]int32{"prod/a.1": 1, "prod/b.1": 2})

	pol, errs := CompileSpec(&customSpec, nil)
	require.Empty(t, errs)
	pol.Name = "custom"
	p.engine.Put(pol)
	res, err := Reindex(ctx, p.ns.JS, p.store, p.engine.Set(), time.Now().Add(-time.Hour), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, ReindexResult{Events: 2, Published: 2}, res)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := p.store.ListActivities(ctx, chstore.ActivityQuery{Scope: &alpha})
		require.NoError(t, err)
		var sums []string
		for _, g := range got {
			sums = append(sums, g.Summary)
		}
		if fmt.Sprint(sums) == "[custom: api-5c9 custom: api-5c9]" {
			break
		}
		require.True(t, time.Now().Before(deadline), "summaries after reindex: %v", sums)
		time.Sleep(50 * time.Millisecond)
	}
	p.waitFor(map[string]int32{"prod/a.1": 1, "prod/b.1": 2}) // still one each

	// A newer live state than the stored one wins over reindexing.
	live := p.publish(eventlog.OpUpdate, "prod", "a.1", 7)
	p.waitFor(map[string]int32{"prod/a.1": 7, "prod/b.1": 2})
	states := p.lastActivitySeq()
	res, err = Reindex(ctx, p.ns.JS, p.store, p.engine.Set(), time.Now().Add(-time.Hour), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, ReindexResult{Events: 2, Published: 1, Skipped: 1}, res)
	// Reindex returns once its one state is stored: b.1's, not a.1's.
	require.Equal(t, states+1, p.lastActivitySeq(), "the reindex published one state")
	require.Equal(t, live, p.activitySource("prod", "a.1"), "a.1's Activity still comes from the live update")
	p.indexed(idx)
	require.Equal(t, map[string]int32{"prod/a.1": 7, "prod/b.1": 2}, p.activities())
}
