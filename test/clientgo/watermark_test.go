package clientgo

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// TestListAtWatermarkZeroHoldsNothingAbove: a list answers at some
// resourceVersion X and holds exactly the states up to X (invariant 3,
// docs/architecture.md#3-list-watch-contract), also while the watermark is still 0. That is the state of a
// fresh stream between the writer's first ClickHouse insert and its first
// watermark move (writer.commit inserts, then sets the watermark), and of a
// separate API server before its watermark follower has read the bucket.
// Informers do list then: one was seen here listing "at resourceVersion 0"
// with 3 items in it.
//
// The test makes that moment last: on a fresh stack (watermark 0) it puts
// one committed-looking state, sequence 1, into ClickHouse, as the writer's
// first batch would be before its watermark moves.
func TestListAtWatermarkZeroHoldsNothingAbove(t *testing.T) {
	s := devtest.New(t)
	ctx := context.Background()
	require.Zero(t, s.Env.Writer.Watermark(), "a fresh stack")
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "first", UID: "uid-first"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", APIVersion: "v1"},
		Reason:         "Started", Message: "started", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	row, err := chstore.EncodeRow(&eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "default", Name: "first"},
		Op: eventlog.OpCreate, Seq: 1, Event: ev}, now.Time)
	require.NoError(t, err)
	require.NoError(t, s.Env.Store.Insert(ctx, []chstore.Row{row}))

	cs := s.Client()
	l, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	listRV, err := strconv.ParseUint(l.ResourceVersion, 10, 64)
	require.NoError(t, err)
	for _, it := range l.Items {
		rv, err := strconv.ParseUint(it.ResourceVersion, 10, 64)
		require.NoError(t, err)
		assert.LessOrEqual(t, rv, listRV, "list: %s has resourceVersion %d, above the list's %d", it.Name, rv, listRV)
	}

	// The same for the initial events of a watch-list: none may be newer
	// than the bookmark that closes them (the tail after it starts at the
	// bookmark's resourceVersion + 1, so such a state would come twice, the
	// second time older than the first).
	w, err := cs.CoreV1().Events("").Watch(ctx, metav1.ListOptions{SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	require.NoError(t, err)
	defer w.Stop()
	var added []string
	for {
		select {
		case e := <-w.ResultChan():
			m := e.Object.(*corev1.Event)
			if e.Type == watch.Bookmark {
				at, err := strconv.ParseUint(m.ResourceVersion, 10, 64)
				require.NoError(t, err)
				for _, rv := range added {
					v, _ := strconv.ParseUint(rv, 10, 64)
					assert.LessOrEqual(t, v, at, "watch-list: an initial event at resourceVersion %d, above the bookmark's %d", v, at)
				}
				return
			}
			added = append(added, m.ResourceVersion)
		case <-time.After(10 * time.Second):
			t.Fatal("no initial-events bookmark within 10s")
		}
	}
}
