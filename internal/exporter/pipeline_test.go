package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// TestResumePointMovesOnlyOverAcknowledgedPrefix is the no-loss rule: the
// resume point passes a state only once it and every earlier state are
// acknowledged, and listed items (whose versions are not in order) never
// become a resume point themselves.
func TestResumePointMovesOnlyOverAcknowledgedPrefix(t *testing.T) {
	e := &Exporter{cfg: Config{MaxInFlight: 8}, sem: make(chan struct{}, 8)}
	s := &stream{e: e}
	ctx := context.Background()
	add := func(rv string) *entry {
		en := &entry{s: s, rec: &eventlog.Record{}, rv: rv}
		require.NoError(t, s.enqueue(ctx, en))
		return en
	}
	acked := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.acked
	}

	listed1, listed2 := add(""), add("")
	require.NoError(t, s.mark(ctx, "100")) // end of the list
	w1, w2, w3 := add("101"), add("102"), add("103")
	require.Len(t, e.sem, 6)

	s.retire(listed2)
	s.retire(w1)
	require.Empty(t, acked(), "the first listed item is not acknowledged yet")
	s.retire(listed1)
	require.Equal(t, "101", acked(), "the list's version, then the first watched state")
	s.retire(w3)
	require.Equal(t, "101", acked(), "102 is still pending")
	require.Len(t, e.sem, 2, "retired entries free their slots only in order")
	s.retire(w2)
	require.Equal(t, "103", acked())
	require.Empty(t, e.sem)
	require.Empty(t, s.pending)
}

// TestEnqueueBlocksWhenFull is the backpressure: with MaxInFlight states
// pending, the next one waits (the watch is not read) until one retires.
func TestEnqueueBlocksWhenFull(t *testing.T) {
	e := &Exporter{cfg: Config{MaxInFlight: 2}, sem: make(chan struct{}, 2)}
	s := &stream{e: e}
	ctx := context.Background()
	first := &entry{s: s, rec: &eventlog.Record{}, rv: "1"}
	require.NoError(t, s.enqueue(ctx, first))
	require.NoError(t, s.enqueue(ctx, &entry{s: s, rec: &eventlog.Record{}, rv: "2"}))
	done := make(chan error, 1)
	go func() { done <- s.enqueue(ctx, &entry{s: s, rec: &eventlog.Record{}, rv: "3"}) }()
	select {
	case <-done:
		t.Fatal("a third state was taken with two pending and MaxInFlight 2")
	case <-time.After(100 * time.Millisecond):
	}
	s.retire(first)
	require.NoError(t, <-done)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.enqueue(cctx, &entry{s: s, rec: &eventlog.Record{}}), context.Canceled, "a stopped exporter does not wait")
}

// TestHealth is what /healthz and /readyz report: a standby is healthy; the
// exporting replica is unhealthy when a watch has been down, or a publish
// unacknowledged, for longer than StuckAfter, and not ready while a watch
// is down at all.
func TestHealth(t *testing.T) {
	e := &Exporter{cfg: Config{MaxInFlight: 4, StuckAfter: time.Minute}, sem: make(chan struct{}, 4), streams: map[string]*stream{}}
	s := &stream{e: e, key: "k"}
	e.streams["k"] = s
	require.NoError(t, e.Healthy(), "standby")
	require.NoError(t, e.Ready(), "standby")

	e.active.Store(true)
	require.NoError(t, e.Healthy())
	require.NoError(t, e.Ready())

	s.watchDown = time.Now().Add(-10 * time.Second)
	require.NoError(t, e.Healthy(), "briefly down (reconnecting)")
	require.ErrorContains(t, e.Ready(), "not open")
	s.watchDown = time.Now().Add(-2 * time.Minute)
	require.ErrorContains(t, e.Healthy(), "watch on the source cluster down for 2m0s")
	s.watchDown = time.Time{}

	en := &entry{s: s, rec: &eventlog.Record{}, rv: "1"}
	require.NoError(t, s.enqueue(context.Background(), en))
	require.NoError(t, e.Healthy())
	en.queued = time.Now().Add(-2 * time.Minute)
	require.ErrorContains(t, e.Healthy(), "publish to JetStream is unacknowledged for 2m0s")
	require.Greater(t, e.checkpointAge(), time.Duration(0))
	s.retire(en)
	require.NoError(t, e.Healthy())
}
