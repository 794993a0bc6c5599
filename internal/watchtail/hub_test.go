package watchtail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// hubFixture is a stream, a publisher and a hub with a small ring.
type hubFixture struct {
	t   *testing.T
	js  jetstream.JetStream
	pub *eventlog.Publisher
	hub *Hub
	n   int
}

func newHubFixture(t *testing.T, size int) *hubFixture {
	t.Helper()
	ns := eventtest.Stream(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r, err := eventlog.NewReader(ctx, ns.JS)
	require.NoError(t, err)
	f := &hubFixture{t: t, js: ns.JS, pub: eventlog.NewPublisher(ns.JS), hub: newHub(ctx, r, slog.New(slog.NewTextHandler(io.Discard, nil)), size)}
	_, ok := f.hub.Tail(ctx, eventlog.FilterSubject(nil, nil), 1)
	require.False(t, ok, "the first watch starts the hub and gets a tail of its own")
	require.Eventually(t, func() bool {
		f.hub.mu.Lock()
		defer f.hub.mu.Unlock()
		return f.hub.running
	}, 10*time.Second, 10*time.Millisecond)
	return f
}

// put publishes one state in namespace ns and returns its sequence.
func (f *hubFixture) put(ns string) uint64 {
	f.t.Helper()
	f.n++
	name := fmt.Sprintf("e.%d", f.n)
	seq, err := f.pub.Publish(context.Background(), createOf(ns, name), eventlog.PublishOptions{MsgID: name})
	require.NoError(f.t, err)
	return seq
}

func take(t *testing.T, tail Feed[State], n int) []uint64 {
	t.Helper()
	var got []uint64
	for len(got) < n {
		select {
		case st, ok := <-tail.States():
			require.True(t, ok, "feed ended: %v", tail.Err())
			got = append(got, st.Record.Seq)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d states within 10s", len(got), n)
		}
	}
	return got
}

// TestHubTail: a watch from a sequence the ring holds gets every state of
// its subjects from there, in order, once, its own copies, then the new
// ones; Caught follows the hub.
func TestHubTail(t *testing.T) {
	f := newHubFixture(t, 64)
	ctx := context.Background()
	var inA []uint64
	for i := range 10 {
		ns := "a"
		if i%2 == 1 {
			ns = "b"
		}
		seq := f.put(ns)
		if ns == "a" {
			inA = append(inA, seq)
		}
	}
	require.Eventually(t, func() bool { f.hub.mu.Lock(); defer f.hub.mu.Unlock(); return f.hub.last >= inA[len(inA)-1] }, 10*time.Second, 10*time.Millisecond)
	a := "a"
	tail, ok := f.hub.Tail(ctx, eventlog.FilterSubject(&scope.Platform, &a), inA[1])
	require.True(t, ok)
	defer tail.Stop()
	require.Equal(t, inA[1:], take(t, tail, len(inA)-1))
	later := f.put("a")
	f.put("b")
	require.Equal(t, []uint64{later}, take(t, tail, 1))

	// Caught: once the hub has read the "b" state and the watch took "later".
	require.Eventually(t, func() bool {
		seq, ok := tail.Caught(ctx, later)
		return ok && seq == later+1
	}, 10*time.Second, 10*time.Millisecond)
	_, ok = tail.Caught(ctx, later-1)
	require.False(t, ok, "a state sent but not taken")

	// Every watch gets the same record, and what they derive from it with
	// a Memo is made once for all of them.
	other, ok := f.hub.Tail(ctx, eventlog.FilterSubject(&scope.Platform, &a), later)
	require.True(t, ok)
	defer other.Stop()
	third, ok := f.hub.Tail(ctx, eventlog.FilterSubject(&scope.Platform, &a), later)
	require.True(t, ok)
	defer third.Stop()
	s2, s3 := <-other.States(), <-third.States()
	require.Same(t, s2.Record, s3.Record)
	made := 0
	memo := NewMemo[int]("test")
	for _, st := range []State{s2, s3} {
		v := memo.Get(st, func(shared bool) int {
			require.True(t, shared)
			made++
			return made
		})
		require.Equal(t, 1, v)
	}
	require.Equal(t, 1, made)
	// Another memo is another value.
	require.Equal(t, "other", NewMemo[string]("other").Get(s2, func(bool) string { return "other" }))
	// A state of its own derives every time.
	mine := State{Record: &eventlog.Record{}}
	for range 2 {
		require.Equal(t, false, NewMemo[bool]("k").Get(mine, func(shared bool) bool { return shared }))
	}
}

// TestHubRing: a watch from before the ring is refused (the caller uses a
// tail of its own), and one that falls further behind than the ring ends
// with ErrFellBehind.
func TestHubRing(t *testing.T) {
	f := newHubFixture(t, 8)
	ctx := context.Background()
	first := f.put("a")
	require.Eventually(t, func() bool { f.hub.mu.Lock(); defer f.hub.mu.Unlock(); return f.hub.last >= first }, 10*time.Second, 10*time.Millisecond)
	slow, ok := f.hub.Tail(ctx, eventlog.FilterSubject(nil, nil), first)
	require.True(t, ok)
	var last uint64
	for range 200 { // more than slow's channel and the ring hold
		last = f.put("a")
	}
	require.Eventually(t, func() bool { f.hub.mu.Lock(); defer f.hub.mu.Unlock(); return f.hub.last >= last }, 10*time.Second, 10*time.Millisecond)
	_, ok = f.hub.Tail(ctx, eventlog.FilterSubject(nil, nil), first)
	require.False(t, ok, "the ring no longer holds %d", first)
	_, ok = f.hub.Tail(ctx, eventlog.FilterSubject(nil, nil), last-3)
	require.True(t, ok)

	// slow took nothing meanwhile: what its channel and its last batch held
	// still comes out, then it ends.
	n := 0
	for range slow.States() {
		n++
	}
	require.True(t, errors.Is(slow.Err(), ErrFellBehind), "ended with %v after %d states", slow.Err(), n)
	require.Less(t, n, 200)
}

// TestHubTailAheadOfHub: a watch may start from a sequence the hub has not
// read yet (the hub trails the stream); what the hub reads before that
// sequence is not handed on.
func TestHubTailAheadOfHub(t *testing.T) {
	h := &Hub{ring: make([]hubEntry, 16), wake: make(chan struct{}), started: true, running: true, floor: 1, gen: 1, decoded: 16}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tail, ok := h.Tail(ctx, eventlog.FilterSubject(nil, nil), 3)
	require.True(t, ok)
	defer tail.Stop()
	for seq := uint64(1); seq <= 5; seq++ {
		appendCreate(t, h, seq)
		h.wakeTails()
	}
	require.Equal(t, []uint64{3, 4, 5}, take(t, tail, 3))
	// The tail records what it looked at just after handing a state on.
	require.Eventually(t, func() bool {
		seq, ok := tail.Caught(ctx, 5)
		return ok && seq == 5
	}, 5*time.Second, time.Millisecond)
}

// TestHubReadsOnlyWithWatches: a hub reads nothing before its first watch,
// stops reading once it has had none for hubIdle, and starts again for the
// next one.
func TestHubReadsOnlyWithWatches(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := eventlog.NewReader(ctx, ns.JS)
	require.NoError(t, err)
	h := newHub(ctx, r, slog.New(slog.NewTextHandler(io.Discard, nil)), 16)
	h.idleAfter, h.idleCheck = 200*time.Millisecond, 20*time.Millisecond
	state := func() (started, running bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.started, h.running
	}
	time.Sleep(50 * time.Millisecond)
	started, _ := state()
	require.False(t, started, "no watch, no reading")

	var tail *HubTail
	require.Eventually(t, func() bool {
		var ok bool
		tail, ok = h.Tail(ctx, eventlog.FilterSubject(nil, nil), 1)
		return ok
	}, 10*time.Second, 10*time.Millisecond)
	time.Sleep(3 * h.idleAfter)
	_, running := state()
	require.True(t, running, "a hub with a watch keeps reading")

	tail.Stop()
	require.Eventually(t, func() bool { started, running := state(); return !started && !running }, 10*time.Second, 10*time.Millisecond,
		"a hub without watches stops reading")
	require.Eventually(t, func() bool {
		_, ok := h.Tail(ctx, eventlog.FilterSubject(nil, nil), 1)
		return ok
	}, 10*time.Second, 10*time.Millisecond, "and starts again for the next watch")
}

// TestHubDecodesOldStatesAgain: the hub keeps only its newest states
// decoded and shared; a watch from further back gets the older ones decoded
// again, whole (sequence, resourceVersion, operation and Prev), and the
// newest ones shared.
func TestHubDecodesOldStatesAgain(t *testing.T) {
	f := newHubFixture(t, 16)
	f.hub.mu.Lock()
	f.hub.decoded = 4
	f.hub.mu.Unlock()
	ctx := context.Background()

	// A create, an update of it that carries the state it replaced, then
	// more creates, so that the update is among the older states.
	seqs := []uint64{f.put("a")}
	name := fmt.Sprintf("e.%d", f.n)
	prev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}, Reason: "Before"}
	upd := &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "a", Name: name}, Op: eventlog.OpUpdate, Prev: prev,
		Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}, Reason: "After"}}
	useq, err := f.pub.Publish(ctx, upd, eventlog.PublishOptions{ExpectLastSeq: &seqs[0]})
	require.NoError(t, err)
	seqs = append(seqs, useq)
	for range 7 {
		seqs = append(seqs, f.put("a"))
	}
	end := seqs[len(seqs)-1]
	require.Eventually(t, func() bool { f.hub.mu.Lock(); defer f.hub.mu.Unlock(); return f.hub.last >= end }, 10*time.Second, 10*time.Millisecond)

	f.hub.mu.Lock()
	var decoded int
	for _, e := range f.hub.ring {
		if e.rec != nil {
			decoded++
		}
	}
	f.hub.mu.Unlock()
	require.Equal(t, 4, decoded, "only the newest states stay decoded")

	tail, ok := f.hub.Tail(ctx, eventlog.FilterSubject(nil, nil), seqs[0])
	require.True(t, ok)
	defer tail.Stop()
	var got []State
	for len(got) < len(seqs) {
		select {
		case st := <-tail.States():
			got = append(got, st)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d states", len(got), len(seqs))
		}
	}
	probe := NewMemo[bool]("probe")
	for i, st := range got {
		require.Equal(t, seqs[i], st.Record.Seq)
		require.Equal(t, fmt.Sprint(seqs[i]), st.Record.Event.ResourceVersion)
		shared := probe.Get(st, func(shared bool) bool { return shared })
		require.Equal(t, i >= len(seqs)-4, shared, "state %d of %d", i+1, len(seqs))
		require.Equal(t, shared, st.Shared())
	}
	old := got[1].Record // decoded again for this watch
	require.Equal(t, eventlog.OpUpdate, old.Op)
	require.Equal(t, "After", old.Event.Reason)
	require.NotNil(t, old.Prev)
	require.Equal(t, "Before", old.Prev.Reason)
	require.Equal(t, eventlog.Key{Scope: scope.Platform, Namespace: "a", Name: name}, old.Key)
	require.Equal(t, eventlog.OpCreate, got[0].Record.Op)
}

// TestHubKeepsNewestDecoded: whatever the ring's size against hubDecoded,
// exactly the newest min(decoded, size) states in the ring keep their
// decoded record.
func TestHubKeepsNewestDecoded(t *testing.T) {
	for _, c := range []struct{ size, decoded int }{{8, 3}, {8, 8}, {8, 20}} {
		h := &Hub{ring: make([]hubEntry, c.size), wake: make(chan struct{}), decoded: uint64(c.decoded)}
		for seq := uint64(1); seq <= 20; seq++ {
			appendCreate(t, h, seq)
		}
		var decoded []uint64
		for _, e := range h.ring {
			if e.rec != nil {
				decoded = append(decoded, e.seq)
			}
		}
		slices.Sort(decoded)
		var want []uint64
		for seq := uint64(20 - min(c.size, c.decoded) + 1); seq <= 20; seq++ {
			want = append(want, seq)
		}
		require.Equal(t, want, decoded, "ring %d, decoded %d", c.size, c.decoded)
	}
}

// createOf is the create of an event that has nothing but its namespace
// and name, on the platform scope.
func createOf(namespace, name string) *eventlog.Record {
	return &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: namespace, Name: name}, Op: eventlog.OpCreate,
		Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}
}

// appendCreate appends to h, as its reader hands states over, the create of
// event e.<seq> in namespace "ns" stored at sequence seq.
func appendCreate(t *testing.T, h *Hub, seq uint64) {
	t.Helper()
	rec := createOf("ns", fmt.Sprintf("e.%d", seq))
	rec.Seq = seq
	m, err := eventlog.EncodeMsg(rec)
	require.NoError(t, err)
	h.append(rec, &eventlog.Raw{Subject: m.Subject, Op: rec.Op, Data: m.Data, Seq: seq})
}
