package writer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/writer"
)

var tenant = scope.Scope{Type: scope.TypeProject, Name: "alpha"}

type env struct {
	t     *testing.T
	ch    *chserver.Server
	store *chstore.Store
	ns    *natstest.Server
	pub   *eventlog.Publisher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ch := chtest.ForTest(t)
	store := storetest.Migrated(t, ch)
	ns := natstest.ForTest(t)
	require.NoError(t, eventlog.Ensure(context.Background(), ns.JS, eventlog.DefaultConfig()))
	return &env{t: t, ch: ch, store: store, ns: ns, pub: eventlog.NewPublisher(ns.JS)}
}

func testConfig() writer.Config {
	c := writer.DefaultConfig()
	c.BatchSize = 50
	c.BatchWait = 20 * time.Millisecond
	c.RetryMax = 200 * time.Millisecond
	return c
}

// start runs a writer on ins until the returned stop is called.
func (e *env) start(ins writer.Inserter, cfg writer.Config) (*writer.Writer, func()) {
	w := writer.New(e.ns.JS, ins, cfg, eventlog.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(e.t, <-done)
		})
	}
	e.t.Cleanup(stop)
	return w, stop
}

func event(i, count int) *corev1.Event {
	ts := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second).Add(time.Duration(count) * time.Second))
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "prod", Name: fmt.Sprintf("web-%d.%016x", i, i), UID: types.UID(fmt.Sprintf("uid-%d", i))},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "prod", Name: fmt.Sprintf("web-%d", i)},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: ts, LastTimestamp: ts, Count: int32(count),
	}
}

// publish writes state `count` of event i and returns its sequence.
func (e *env) publish(i, count int) uint64 {
	op := eventlog.OpUpdate
	if count == 1 {
		op = eventlog.OpCreate
	}
	ev := event(i, count)
	seq, err := e.pub.Publish(context.Background(), &eventlog.Record{
		Key: eventlog.Key{Scope: tenant, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev,
	}, eventlog.PublishOptions{MsgID: fmt.Sprintf("%s/%d", ev.UID, count)})
	require.NoError(e.t, err)
	return seq
}

// requireLatest asserts that the store holds exactly events 0..n-1, each once,
// at count `counts`.
func (e *env) requireLatest(n, counts int) {
	e.t.Helper()
	recs, err := e.store.Latest(context.Background(), chstore.LatestFilter{Scope: &tenant})
	require.NoError(e.t, err)
	require.Len(e.t, recs, n)
	seen := map[string]bool{}
	for _, r := range recs {
		require.False(e.t, seen[r.Event.Name], "event %s returned twice", r.Event.Name)
		seen[r.Event.Name] = true
		require.EqualValues(e.t, counts, r.Event.Count, "event %s is not in its latest state", r.Event.Name)
	}
}

func waitFor(t *testing.T, w *writer.Writer, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, w.WaitFor(ctx, seq), "watermark stuck at %d, want %d", w.Watermark(), seq)
}

func TestCreatesUpdatesAndDuplicatesFoldToLatest(t *testing.T) {
	e := newEnv(t)
	w, _ := e.start(e.store, testConfig())
	const n, states = 200, 3
	var last uint64
	for c := 1; c <= states; c++ {
		for i := range n {
			last = e.publish(i, c)
		}
	}
	// Exact duplicate publishes (a client retry) are stored once.
	for i := range n {
		require.LessOrEqual(t, e.publish(i, states), last, "a duplicate gets the original's sequence")
	}
	info, err := e.ns.JS.Stream(context.Background(), eventlog.StreamName)
	require.NoError(t, err)
	require.EqualValues(t, n*states, info.CachedInfo().State.Msgs, "duplicates are not stored")
	waitFor(t, w, last)
	e.requireLatest(n, states)
}

// crashingInserter simulates a writer process dying around its Nth insert:
// before the insert reaches ClickHouse, or after it committed but before the
// acknowledgement.
type crashingInserter struct {
	writer.Inserter
	n          int32
	afterWrite bool
	calls      atomic.Int32
	crash      func()
}

func (c *crashingInserter) Insert(ctx context.Context, rows []chstore.Row) error {
	if c.calls.Add(1) != c.n {
		return c.Inserter.Insert(ctx, rows)
	}
	if c.afterWrite {
		if err := c.Inserter.Insert(ctx, rows); err != nil {
			return err
		}
	}
	c.crash()
	<-ctx.Done()
	return ctx.Err()
}

func TestWriterStoppedMidBatchLosesAndDuplicatesNothing(t *testing.T) {
	for _, afterWrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash after commit=%v", afterWrite), func(t *testing.T) {
			e := newEnv(t)
			const n = 500
			var last uint64
			for i := range n {
				last = e.publish(i, 1)
			}
			ins := &crashingInserter{Inserter: e.store, n: 3, afterWrite: afterWrite}
			crashed := make(chan struct{})
			ins.crash = func() { close(crashed) }
			w1, stop := e.start(ins, testConfig())
			<-crashed
			stop()
			require.Less(t, w1.Watermark(), last, "the first writer must not have finished")

			for i := range n {
				last = e.publish(i, 2)
			}
			w2, _ := e.start(e.store, testConfig())
			waitFor(t, w2, last)
			e.requireLatest(n, 2)
		})
	}
}

func TestClickHouseKilledWhileWriting(t *testing.T) {
	e := newEnv(t)
	w, _ := e.start(e.store, testConfig())
	const n = 300
	var last uint64
	for i := range n {
		last = e.publish(i, 1)
	}
	waitFor(t, w, last)

	e.ch.Kill()
	for i := range n {
		last = e.publish(i, 2)
	}
	for i := n; i < 2*n; i++ {
		last = e.publish(i, 1)
	}
	time.Sleep(500 * time.Millisecond) // let the writer fail a few inserts
	require.Less(t, w.Watermark(), last, "nothing can be committed while ClickHouse is down")

	restarted, err := e.ch.Restart(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = restarted.Stop() })
	waitFor(t, w, last)
	recs, err := e.store.Latest(context.Background(), chstore.LatestFilter{Scope: &tenant})
	require.NoError(t, err)
	require.Len(t, recs, 2*n)
	for _, r := range recs {
		var idx int
		_, _ = fmt.Sscanf(r.Event.InvolvedObject.Name, "web-%d", &idx)
		want := int32(1)
		if idx < n {
			want = 2
		}
		require.Equal(t, want, r.Event.Count, r.Event.Name)
	}
}

func TestUndecodableMessageGoesToDeadLetterStream(t *testing.T) {
	e := newEnv(t)
	w, _ := e.start(e.store, testConfig())
	ctx := context.Background()
	e.publish(0, 1)
	bad := []*nats.Msg{
		{Subject: eventlog.Subject(eventlog.Key{Scope: tenant, Namespace: "prod", Name: "x"}), Data: []byte("not protobuf"),
			// JetStream headers of the original publish must not follow it
			// into the dead-letter stream (it would be refused there).
			Header: nats.Header{eventlog.HeaderOp: {"create"}, eventlog.HeaderCodec: {"corev1.Event/pb"},
				"Nats-Expected-Stream": {eventlog.StreamName}, "Nats-Msg-Id": {"bad-1"}}},
		{Subject: "events.Project.alpha.prod.y", Data: []byte{}, Header: nats.Header{eventlog.HeaderOp: {"explode"}}},
		{Subject: "events.Nope.alpha.prod.z", Data: []byte{}},
	}
	for _, m := range bad {
		_, err := e.ns.JS.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	last := e.publish(1, 1)
	waitFor(t, w, last)
	e.requireLatest(2, 1)

	dlq, err := e.ns.JS.Stream(ctx, eventlog.DeadLetterStream)
	require.NoError(t, err)
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(bad), info.State.Msgs)
	first, err := dlq.GetMsg(ctx, info.State.FirstSeq)
	require.NoError(t, err)
	require.Equal(t, "2", first.Header.Get(writer.HeaderDLQSeq))
	require.Contains(t, first.Header.Get(writer.HeaderDLQReason), "unmarshal event")
	require.Equal(t, []byte("not protobuf"), first.Data)
}

// Every watermark the writer publishes is backed by rows in ClickHouse.
func TestWatermarkNeverPassesUnqueryableState(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.BatchSize = 7 // many batches
	w, _ := e.start(e.store, cfg)
	ctx := context.Background()
	kv, err := e.ns.JS.KeyValue(ctx, eventlog.StateBucket)
	require.NoError(t, err)
	watch, err := kv.Watch(ctx, writer.WatermarkKey)
	require.NoError(t, err)
	defer watch.Stop()

	const n = 300
	pubErr := make(chan error, 1)
	go func() { // publish while the writer commits, from another goroutine
		for i := range n {
			ev := event(i, 1)
			if _, err := e.pub.Publish(ctx, &eventlog.Record{Key: eventlog.Key{Scope: tenant, Namespace: ev.Namespace, Name: ev.Name},
				Op: eventlog.OpCreate, Event: ev}, eventlog.PublishOptions{MsgID: string(ev.UID)}); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	defer func() { require.NoError(t, <-pubErr) }()
	const last = n
	checked := 0
	for wm := uint64(0); wm < last; {
		var entry jetstream.KeyValueEntry
		select {
		case entry = <-watch.Updates():
		case <-time.After(60 * time.Second):
			t.Fatalf("watermark stuck at %d", w.Watermark())
		}
		if entry == nil {
			continue
		}
		_, err := fmt.Sscan(string(entry.Value()), &wm)
		require.NoError(t, err)
		var distinct uint64
		require.NoError(t, e.store.Conn().QueryRow(ctx,
			"SELECT uniqExact(seq) FROM eventpipe.events WHERE seq <= ?", wm).Scan(&distinct))
		require.Equal(t, wm, distinct, "watermark %d published but only %d states queryable", wm, distinct)
		checked++
	}
	require.Greater(t, checked, 5)
}

// countingInserter counts the inserts that reach the store.
type countingInserter struct {
	writer.Inserter
	calls atomic.Int32
	after func() // called after every successful insert
}

func (c *countingInserter) Insert(ctx context.Context, rows []chstore.Row) error {
	c.calls.Add(1)
	err := c.Inserter.Insert(ctx, rows)
	if err == nil && c.after != nil {
		c.after()
	}
	return err
}

// TestFencedWriterStopsCommitting: once its fence fails (its lease is
// lost), a writer inserts nothing more, acknowledges nothing more and
// returns the fence's error; another writer then takes everything from
// the committed watermark on, and every state lands once.
func TestFencedWriterStopsCommitting(t *testing.T) {
	e := newEnv(t)
	const n = 500
	var last uint64
	for i := range n {
		last = e.publish(i, 1)
	}
	errLost := errors.New("lease lost")
	var lost atomic.Bool
	ins := &countingInserter{Inserter: e.store}
	ins.after = func() { lost.Store(true) } // lose the lease right after the first commit
	w1 := writer.New(e.ns.JS, ins, testConfig(), eventlog.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	w1.SetFence(func() error {
		if lost.Load() {
			return errLost
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := w1.Run(ctx)
	require.ErrorIs(t, err, errLost)
	require.EqualValues(t, 1, ins.calls.Load(), "no insert after the fence failed")
	require.Zero(t, w1.Watermark(), "the batch committed as the lease was lost is not acknowledged by the fenced writer")
	w2, _ := e.start(e.store, testConfig())
	waitFor(t, w2, last)
	e.requireLatest(n, 1)
}

// TestWriterRefusesAnIndexOfAnotherHistory: a writer that starts with no
// watermark (a JetStream rebuilt from empty disks, state bucket and all)
// over an index that holds states of the old stream refuses to index the
// new stream's states, whose sequences the index already holds, and
// starts once the stream is moved past the index's history. A writer that
// crashed after its very first insert, before any watermark, is not
// mistaken for that: the stream holds the states it indexed.
func TestWriterRefusesAnIndexOfAnotherHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// The first batch is inserted, then the writer dies before its watermark.
	for i := range 10 {
		e.publish(i, 1)
	}
	ins := &crashingInserter{Inserter: e.store, n: 1, afterWrite: true}
	crashed := make(chan struct{})
	ins.crash = func() { close(crashed) }
	w1, stop := e.start(ins, testConfig())
	<-crashed
	stop()
	require.Zero(t, w1.Watermark())
	w2, stop2 := e.start(e.store, testConfig())
	waitFor(t, w2, 10)
	stop2()

	// JetStream rebuilt from nothing: a new server, a new stream.
	e.ns = natstest.ForTest(t)
	require.NoError(t, eventlog.Ensure(ctx, e.ns.JS, eventlog.DefaultConfig()))
	e.pub = eventlog.NewPublisher(e.ns.JS)
	e.publish(100, 1)
	w3 := writer.New(e.ns.JS, e.store, testConfig(), eventlog.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	err := w3.Run(ctx)
	require.ErrorIs(t, err, eventlog.ErrStreamRecreated)
	require.ErrorContains(t, err, "nats stream purge EVENTS --seq 11")

	s, err := e.ns.JS.Stream(ctx, eventlog.StreamName)
	require.NoError(t, err)
	require.NoError(t, s.Purge(ctx, jetstream.WithPurgeSequence(11)))
	last := e.publish(101, 1)
	require.EqualValues(t, 11, last)
	w4, _ := e.start(e.store, testConfig())
	waitFor(t, w4, last)
}
