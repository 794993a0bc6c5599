package writer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// gate is an Inserter that accepts rows only while open, like a ClickHouse
// that is up or down; it keeps nothing.
type gate struct{ open atomic.Bool }

func (g *gate) Insert(ctx context.Context, rows []chstore.Row) error {
	if !g.open.Load() {
		return fmt.Errorf("clickhouse is down")
	}
	return nil
}

func publishN(t *testing.T, pub *eventlog.Publisher, from, n int, size int) (last uint64) {
	t.Helper()
	for i := from; i < from+n; i++ {
		name := fmt.Sprintf("e%d", i)
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Message: string(make([]byte, size))}
		seq, err := pub.Publish(context.Background(), &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "ns", Name: name},
			Op: eventlog.OpCreate, Event: ev}, eventlog.PublishOptions{MsgID: name})
		require.NoError(t, err)
		last = seq
	}
	return last
}

func TestTrimKeepsUncommittedAndRecentStates(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	logCfg := eventlog.DefaultConfig()
	logCfg.Retention = time.Hour
	require.NoError(t, eventlog.Ensure(ctx, ns.JS, logCfg))
	pub := eventlog.NewPublisher(ns.JS)
	g := &gate{}
	g.open.Store(true)
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.BatchWait, cfg.TrimInterval = 10, 10*time.Millisecond, time.Hour
	w := New(ns.JS, g, cfg, logCfg, nil, slog.New(slog.DiscardHandler))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	w.now = func() time.Time { return time.Unix(0, clock.Load()) }
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	committed := publishN(t, pub, 0, 30, 10)
	require.NoError(t, w.WaitFor(ctxTimeout(t), committed))
	g.open.Store(false) // ClickHouse goes down: the next states stay uncommitted
	publishN(t, pub, 30, 20, 10)
	stream, err := ns.JS.Stream(ctx, eventlog.StreamName)
	require.NoError(t, err)

	w.trim(ctx, stream) // nothing is older than the retention yet
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.FirstSeq)

	clock.Add(int64(2 * time.Hour)) // now everything is past the retention
	w.trim(ctx, stream)
	info, err = stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, committed+1, info.State.FirstSeq, "committed states past retention are purged, uncommitted ones kept")
	require.EqualValues(t, 20, info.State.Msgs)
}

func TestFullStreamRefusesWritesRetryably(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	logCfg := eventlog.DefaultConfig()
	logCfg.MaxBytes = 1 << 20
	require.NoError(t, eventlog.Ensure(ctx, ns.JS, logCfg))
	pub := eventlog.NewPublisher(ns.JS)
	// Nothing is written to ClickHouse, so nothing may be dropped: once
	// full, publishes fail with a retryable error and the first states stay.
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		name := fmt.Sprintf("big%d", i)
		_, err = pub.Publish(ctx, &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "ns", Name: name}, Op: eventlog.OpCreate,
			Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Message: string(make([]byte, 16<<10))}},
			eventlog.PublishOptions{MsgID: name})
	}
	require.Error(t, err, "a 1 MiB stream cannot take 200 states of 16 KiB")
	require.True(t, eventlog.IsRetryable(err), "a full stream is a retryable condition: %v", err)
	stream, serr := ns.JS.Stream(ctx, eventlog.StreamName)
	require.NoError(t, serr)
	first, serr := stream.GetMsg(ctx, 1)
	require.NoError(t, serr, "the oldest state is still there")
	require.Contains(t, first.Subject, "big0")
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
