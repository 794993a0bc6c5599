package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// state is one published state as the log holds it.
type state struct {
	seq  uint64
	op   eventlog.Op
	key  string // namespace/name
	kind watch.EventType
}

// TestListWatchContractAt1000PerSecond is issue 3's watch contract under
// load (invariant 3, docs/architecture.md#3-list-watch-contract): while 1,000 states a second are written
// (creates, updates, deletes over 5 namespaces), a list at resourceVersion X
// holds exactly the states up to X, and a watch from X delivers every later
// state exactly once, in order, with the right type; a watch resumed from
// any resourceVersion it delivered continues with exactly the states after
// it.
func TestListWatchContractAt1000PerSecond(t *testing.T) {
	cs, env := startStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := eventlog.NewPublisher(env.JS)

	const (
		rate     = 1000 // states per second
		duration = 6 * time.Second
		tick     = 10 * time.Millisecond
	)
	var (
		mu        sync.Mutex
		published []state
		live      = map[string]*corev1.Event{} // current state per key
		liveSeq   = map[string]uint64{}
	)
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(n int) {
		op, ev := eventlog.OpCreate, (*corev1.Event)(nil)
		var key string
		r := rng.IntN(10)
		mu.Lock()
		if r < 3 && len(live) > 10 {
			// update or delete an existing event
			for k := range live {
				key = k
				break
			}
			ev = live[key].DeepCopy()
			if r < 2 {
				op = eventlog.OpUpdate
				ev.Count++
				ev.LastTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
			} else {
				op = eventlog.OpDelete
			}
		} else {
			ns := fmt.Sprintf("rate-%d", n%5)
			ev = newEvent(ns, fmt.Sprintf("ev.%06d", n), "Pulled")
			ev.UID = types.UID(fmt.Sprintf("uid-%06d", n))
			ev.CreationTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
			key = ns + "/" + ev.Name
		}
		expect := liveSeq[key]
		mu.Unlock()
		rec := &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev}
		seq, err := pub.Publish(ctx, rec, eventlog.PublishOptions{MsgID: fmt.Sprintf("%s/%d/%s", key, expect, op), ExpectLastSeq: &expect})
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("publish %s %s: %v", op, key, err)
			}
			return
		}
		kind := map[eventlog.Op]watch.EventType{eventlog.OpCreate: watch.Added, eventlog.OpUpdate: watch.Modified, eventlog.OpDelete: watch.Deleted}[op]
		mu.Lock()
		published = append(published, state{seq: seq, op: op, key: key, kind: kind})
		if op == eventlog.OpDelete {
			delete(live, key)
		} else {
			live[key] = ev
		}
		liveSeq[key] = seq
		mu.Unlock()
	}

	// The writer: paced at rate, one publish after another (so sequences
	// follow the order of `published`).
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		n := 0
		for time.Since(start) < duration {
			<-tk.C
			target := int(time.Since(start).Seconds() * rate)
			for n < target && ctx.Err() == nil {
				write(n)
				n++
			}
		}
	}()

	// A list in the middle of the writes, then a watch from its
	// resourceVersion, as an informer does.
	time.Sleep(2 * time.Second)
	list, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	x, err := strconv.ParseUint(list.ResourceVersion, 10, 64)
	require.NoError(t, err)
	require.NotZero(t, x)
	w, err := cs.CoreV1().Events("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	defer w.Stop()
	<-done
	elapsed := time.Since(start)
	mu.Lock()
	all := append([]state(nil), published...)
	mu.Unlock()
	require.NotEmpty(t, all)
	t.Logf("published %d states in %s (%.0f/s); listed at %d", len(all), elapsed.Round(time.Millisecond), float64(len(all))/elapsed.Seconds(), x)

	// The list holds exactly the latest state, at or below X, of each event
	// not deleted by then.
	want := map[string]uint64{}
	for _, s := range all {
		if s.seq > x {
			break
		}
		if s.op == eventlog.OpDelete {
			delete(want, s.key)
		} else {
			want[s.key] = s.seq
		}
	}
	got := map[string]uint64{}
	for _, it := range list.Items {
		rv, err := strconv.ParseUint(it.ResourceVersion, 10, 64)
		require.NoError(t, err)
		got[it.Namespace+"/"+it.Name] = rv
	}
	require.Equal(t, want, got, "the list at %d", x)

	// The watch delivers every state after X once, in order, typed.
	var after []state
	for _, s := range all {
		if s.seq > x {
			after = append(after, s)
		}
	}
	delivered := make([]state, 0, len(after))
	timeout := time.After(60 * time.Second)
	for len(delivered) < len(after) {
		select {
		case e, ok := <-w.ResultChan():
			require.True(t, ok, "watch closed after %d of %d states", len(delivered), len(after))
			ev, isEvent := e.Object.(*corev1.Event)
			require.True(t, isEvent, "%s: %#v", e.Type, e.Object)
			seq, err := strconv.ParseUint(ev.ResourceVersion, 10, 64)
			require.NoError(t, err)
			delivered = append(delivered, state{seq: seq, key: ev.Namespace + "/" + ev.Name, kind: e.Type})
		case <-timeout:
			t.Fatalf("watch delivered %d of %d states in 60s", len(delivered), len(after))
		}
	}
	for i, s := range after {
		require.Equal(t, state{seq: s.seq, key: s.key, kind: s.kind}, delivered[i], "delivery %d", i)
	}

	// Resume from resourceVersions the watch delivered: the next states
	// are exactly those after it.
	for _, i := range []int{0, len(delivered) / 3, len(delivered) / 2, len(delivered) - 20} {
		if i < 0 || i+20 > len(delivered) {
			continue
		}
		from := delivered[i]
		rw, err := cs.CoreV1().Events("").Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatUint(from.seq, 10)})
		require.NoError(t, err)
		for j := 1; j < 20 && i+j < len(delivered); j++ {
			e := nextEvent(t, rw)
			ev := e.Object.(*corev1.Event)
			require.Equal(t, delivered[i+j], state{seq: mustRV(t, ev), key: ev.Namespace + "/" + ev.Name, kind: e.Type}, "resumed from %d", from.seq)
		}
		rw.Stop()
	}
}

func mustRV(t *testing.T, ev *corev1.Event) uint64 {
	t.Helper()
	rv, err := strconv.ParseUint(ev.ResourceVersion, 10, 64)
	require.NoError(t, err)
	return rv
}
