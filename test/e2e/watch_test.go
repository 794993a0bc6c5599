package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
)

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		require.True(t, ok, "watch closed")
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event within 20s")
		return watch.Event{}
	}
}

func TestWatchResumeExpiryAndBookmarks(t *testing.T) {
	cs, env := startStack(t)
	ctx := context.Background()
	events := cs.CoreV1().Events("w")
	var rvs []string
	for i := range 10 {
		ev, err := events.Create(ctx, newEvent("w", fmt.Sprintf("e.%d", i), "Started"), metav1.CreateOptions{})
		require.NoError(t, err)
		rvs = append(rvs, ev.ResourceVersion)
	}

	t.Run("resume from any resourceVersion", func(t *testing.T) {
		for i, rv := range rvs[:9] {
			w, err := events.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			require.NoError(t, err)
			e := nextEvent(t, w)
			require.Equal(t, watch.Added, e.Type)
			require.Equal(t, fmt.Sprintf("e.%d", i+1), e.Object.(*corev1.Event).Name, "the first state after %s", rv)
			require.Equal(t, rvs[i+1], e.Object.(*corev1.Event).ResourceVersion)
			w.Stop()
		}
	})

	t.Run("bookmarks when asked, with the watch-list end marker", func(t *testing.T) {
		send := true
		w, err := events.Watch(ctx, metav1.ListOptions{SendInitialEvents: &send, AllowWatchBookmarks: true,
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
		require.NoError(t, err)
		defer w.Stop()
		added := 0
		for {
			e := nextEvent(t, w)
			if e.Type == watch.Bookmark {
				m := e.Object.(*corev1.Event)
				require.Equal(t, "true", m.Annotations[metav1.InitialEventsAnnotationKey])
				require.NotEmpty(t, m.ResourceVersion)
				break
			}
			require.Equal(t, watch.Added, e.Type)
			added++
		}
		// The initial events are the list at the watermark: all ten once
		// the writer has committed them (it may still be catching up).
		require.LessOrEqual(t, added, 10)
	})

	t.Run("410 below the stream's first sequence", func(t *testing.T) {
		require.NoError(t, env.Writer.WaitFor(ctx, mustUint(t, rvs[9])))
		stream, err := env.JS.Stream(ctx, eventlog.StreamName)
		require.NoError(t, err)
		require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(mustUint(t, rvs[5]))))
		w, err := events.Watch(ctx, metav1.ListOptions{ResourceVersion: rvs[1]})
		require.NoError(t, err)
		e := nextEvent(t, w)
		require.Equal(t, watch.Error, e.Type)
		status := apierrors.FromObject(e.Object)
		require.True(t, apierrors.IsResourceExpired(status) || apierrors.IsGone(status), "%v", status)
		require.Contains(t, status.Error(), "too old resource version: "+rvs[1])

		// From the last purged state on, the watch is still served.
		w2, err := events.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatUint(mustUint(t, rvs[5])-1, 10)})
		require.NoError(t, err)
		defer w2.Stop()
		require.Equal(t, "e.5", nextEvent(t, w2).Object.(*corev1.Event).Name)

		// Trimmed states are still readable by name, from ClickHouse.
		got, err := events.Get(ctx, "e.1", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, rvs[1], got.ResourceVersion)
	})
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return v
}

// TestBookmarksAdvanceInQuietNamespaces: a watch of a namespace where
// nothing happens gets bookmarks that move on with the stream, as
// kube-apiserver's do, so that an informer resuming from its last bookmark
// after the stream trimmed past its namespace's last event is not sent to
// relist. Nothing of the busy namespace is delivered to it.
func TestBookmarksAdvanceInQuietNamespaces(t *testing.T) {
	t.Cleanup(tailwatch.SetBookmarkInterval(300 * time.Millisecond))
	cs, _ := startStack(t)
	ctx := context.Background()
	quiet, err := cs.CoreV1().Events("quiet").Create(ctx, newEvent("quiet", "q.1", "Started"), metav1.CreateOptions{})
	require.NoError(t, err)
	w, err := cs.CoreV1().Events("quiet").Watch(ctx, metav1.ListOptions{ResourceVersion: quiet.ResourceVersion, AllowWatchBookmarks: true})
	require.NoError(t, err)
	defer w.Stop()
	var last string
	for i := range 5 {
		ev, err := cs.CoreV1().Events("busy").Create(ctx, newEvent("busy", fmt.Sprintf("b.%d", i), "Started"), metav1.CreateOptions{})
		require.NoError(t, err)
		last = ev.ResourceVersion
	}
	want, err := strconv.ParseUint(last, 10, 64)
	require.NoError(t, err)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-w.ResultChan():
			require.True(t, ok, "watch closed")
			require.Equal(t, watch.Bookmark, e.Type, "only bookmarks: nothing happens in namespace quiet")
			rv, err := strconv.ParseUint(e.Object.(*corev1.Event).ResourceVersion, 10, 64)
			require.NoError(t, err)
			if rv >= want {
				return
			}
		case <-deadline:
			t.Fatalf("no bookmark at or past %s (the busy namespace's last write) within 20s", last)
		}
	}
}
