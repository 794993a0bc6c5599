package clientgo

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// load creates events in ns at about rate a second for d, from several
// workers, and records each acknowledged create's resourceVersion.
type load struct {
	start   time.Time
	stop    chan struct{} // closed to end the load early
	mu      sync.Mutex
	created map[string]uint64 // name -> resourceVersion of its create
	done    chan struct{}
	err     error
}

func startLoad(t *testing.T, cs kubernetes.Interface, ns string, rate int, d time.Duration) *load {
	t.Helper()
	const workers = 8
	start := time.Now()
	l := &load{start: start, stop: make(chan struct{}), created: map[string]uint64{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	every := time.Duration(workers) * time.Second / time.Duration(rate)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				// Paced against the start, so a slow create does not lower
				// the rate the others keep.
				at := start.Add(time.Duration(i)*every + time.Duration(w)*every/workers)
				if at.Sub(start) >= d {
					return
				}
				select {
				case <-time.After(time.Until(at)):
				case <-l.stop:
					return
				}
				name := fmt.Sprintf("load.%d.%05d", w, i)
				now := metav1.NewTime(time.Now())
				ev, err := cs.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
					Reason:         "Started", Type: corev1.EventTypeNormal, FirstTimestamp: now, LastTimestamp: now, Count: 1,
				}, metav1.CreateOptions{})
				var rv uint64
				if err == nil {
					rv, err = strconv.ParseUint(ev.ResourceVersion, 10, 64)
				}
				l.mu.Lock()
				if err != nil {
					l.err = err
				} else {
					l.created[name] = rv
				}
				l.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// upTo returns the names of the events created at or before rv.
func (l *load) upTo(rv uint64) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name, at := range l.created {
		if at <= rv {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func namesOf(items []corev1.Event) []string {
	out := []string{}
	for _, ev := range items {
		out = append(out, ev.Name)
	}
	sort.Strings(out)
	return out
}

// TestConsistentReadsDuringCreates takes lists, a paginated list and a
// watch-list's initial events (what an informer starts from) while events
// are created at 1,000 a second: each must hold exactly the events created
// at or before the resourceVersion it answers at, none missing, none
// repeated, none from after it.
func TestConsistentReadsDuringCreates(t *testing.T) {
	s := devtest.New(t)
	cs := s.Client()
	ctx := context.Background()
	const ns = "load"
	l := startLoad(t, cs, ns, 1000, time.Minute)
	events := cs.CoreV1().Events(ns)

	type snapshot struct {
		what  string
		rv    uint64
		names []string
	}
	var snaps []snapshot
	waitFor := func(n int) {
		for {
			l.mu.Lock()
			got := len(l.created)
			l.mu.Unlock()
			if got >= n {
				return
			}
			select {
			case <-l.done:
				t.Fatalf("the load ended after %d creates (%v)", got, l.err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for round := 1; round <= 3; round++ {
		waitFor(round * 500)

		list, err := events.List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		snaps = append(snaps, snapshot{"list", rvNum(t, list), namesOf(list.Items)})

		// Pages of 100: the later pages keep the first one's snapshot.
		var paged []corev1.Event
		opts := metav1.ListOptions{Limit: 100}
		var pagedRV uint64
		for {
			page, err := events.List(ctx, opts)
			require.NoError(t, err)
			if pagedRV == 0 {
				pagedRV = rvNum(t, page)
			}
			paged = append(paged, page.Items...)
			if page.Continue == "" {
				break
			}
			opts.Continue = page.Continue
		}
		snaps = append(snaps, snapshot{"paginated list", pagedRV, namesOf(paged)})

		// A watch-list, as an informer with WatchList starts: the initial
		// events end with a bookmark at their resourceVersion.
		yes := true
		w, err := events.Watch(ctx, metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true,
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
		require.NoError(t, err)
		var initial []corev1.Event
		var endRV uint64
		for endRV == 0 {
			select {
			case e, ok := <-w.ResultChan():
				require.True(t, ok, "the watch ended before its initial events did")
				switch e.Type {
				case watch.Added:
					initial = append(initial, *e.Object.(*corev1.Event))
				case watch.Bookmark:
					ev := e.Object.(*corev1.Event)
					if ev.Annotations[metav1.InitialEventsAnnotationKey] == "true" {
						endRV = rvNum(t, ev)
					}
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no end of the initial events within 30s")
			}
		}
		w.Stop()
		snaps = append(snaps, snapshot{"watch-list initial events", endRV, namesOf(initial)})
	}
	close(l.stop)
	<-l.done
	require.NoError(t, l.err)
	t.Logf("%d events created during the reads, %.0f a second", len(l.created), float64(len(l.created))/time.Since(l.start).Seconds())
	for _, sn := range snaps {
		want := l.upTo(sn.rv)
		require.NotEmpty(t, want)
		require.Equal(t, want, sn.names, "%s at resourceVersion %d: not exactly the events created up to it", sn.what, sn.rv)
	}
}
