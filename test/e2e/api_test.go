package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// startStack runs every role in-process (dev mode without the simulated
// cluster) and returns a client for its API server.
func startStack(t *testing.T) (*kubernetes.Clientset, *devenv.Env) {
	t.Helper()
	s := devtest.New(t)
	return s.Client(), s.Env
}

func newEvent(ns, name, reason string) *corev1.Event {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1", APIVersion: "v1"},
		Reason:         reason, Message: "message of " + name, Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
}

func TestEventsAPI(t *testing.T) {
	cs, _ := startStack(t)
	ctx := context.Background()
	events := cs.CoreV1().Events("prod")

	created, err := events.Create(ctx, newEvent("prod", "web-1.aaaa", "Pulling"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, created.UID)
	require.NotEmpty(t, created.ResourceVersion)
	require.False(t, created.CreationTimestamp.IsZero())

	t.Run("read your writes", func(t *testing.T) {
		got, err := events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, created.ResourceVersion, got.ResourceVersion)
		require.Equal(t, "Pulling", got.Reason)
	})

	t.Run("create twice is a conflict", func(t *testing.T) {
		_, err := events.Create(ctx, newEvent("prod", "web-1.aaaa", "Pulling"), metav1.CreateOptions{})
		require.True(t, apierrors.IsAlreadyExists(err), "%v", err)
		require.Equal(t, `events "web-1.aaaa" already exists`, err.Error())
	})

	t.Run("dry run stores nothing", func(t *testing.T) {
		_, err := events.Create(ctx, newEvent("prod", "dry.1", "Pulling"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.NoError(t, err)
		_, err = events.Get(ctx, "dry.1", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "%v", err)
	})

	t.Run("generateName", func(t *testing.T) {
		ev := newEvent("prod", "", "Pulling")
		ev.GenerateName = "gen-"
		got, err := events.Create(ctx, ev, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Regexp(t, `^gen-[a-z0-9]{5}$`, got.Name)
	})

	t.Run("update with a stale resourceVersion conflicts", func(t *testing.T) {
		cur, err := events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
		require.NoError(t, err)
		cur.Count = 2
		updated, err := events.Update(ctx, cur, metav1.UpdateOptions{})
		require.NoError(t, err)
		require.NotEqual(t, cur.ResourceVersion, updated.ResourceVersion)
		cur.Count = 3 // still carries the old resourceVersion
		_, err = events.Update(ctx, cur, metav1.UpdateOptions{})
		require.True(t, apierrors.IsConflict(err), "%v", err)
		require.Contains(t, err.Error(), "the object has been modified; please apply your changes to the latest version and try again")
	})

	t.Run("patches", func(t *testing.T) {
		for _, p := range []struct {
			typ  types.PatchType
			body string
		}{
			{types.MergePatchType, `{"count":4}`},
			{types.StrategicMergePatchType, `{"count":5}`},
			{types.JSONPatchType, `[{"op":"replace","path":"/count","value":6}]`},
		} {
			_, err := events.Patch(ctx, "web-1.aaaa", p.typ, []byte(p.body), metav1.PatchOptions{})
			require.NoError(t, err, p.typ)
		}
		got, err := events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 6, got.Count)
	})

	t.Run("concurrent updates lose nothing", func(t *testing.T) {
		const n = 20
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := events.Patch(ctx, "web-1.aaaa", types.JSONPatchType,
					[]byte(`[{"op":"add","path":"/metadata/annotations","value":{}}]`), metav1.PatchOptions{})
				if err == nil {
					cur, gerr := events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
					if gerr != nil {
						errs <- gerr
						return
					}
					cur.Count++
					_, err = events.Update(ctx, cur, metav1.UpdateOptions{})
					for apierrors.IsConflict(err) {
						cur, gerr = events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
						if gerr != nil {
							errs <- gerr
							return
						}
						cur.Count++
						_, err = events.Update(ctx, cur, metav1.UpdateOptions{})
					}
				}
				errs <- err
			}()
		}
		for range n {
			require.NoError(t, <-errs)
		}
		got, err := events.Get(ctx, "web-1.aaaa", metav1.GetOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 6+n, got.Count, "every increment applied exactly once")
	})

	t.Run("list, selectors and the other group", func(t *testing.T) {
		_, err := events.Create(ctx, newEvent("prod", "web-1.bbbb", "BackOff"), metav1.CreateOptions{})
		require.NoError(t, err)
		// Lists are consistent: the create is in the next list.
		l, err := events.List(ctx, metav1.ListOptions{FieldSelector: "reason=BackOff"})
		require.NoError(t, err)
		require.Len(t, l.Items, 1)
		require.Equal(t, "web-1.bbbb", l.Items[0].Name)
		l, err = events.List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,type=Normal", LabelSelector: "app=web"})
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(l.Items), 2)
		_, err = events.List(ctx, metav1.ListOptions{FieldSelector: "nope=1"})
		require.True(t, apierrors.IsBadRequest(err), "%v", err)
		require.Contains(t, err.Error(), "field label not supported: nope")

		ev, err := cs.EventsV1().Events("prod").Get(ctx, "web-1.bbbb", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "BackOff", ev.Reason)
		require.Equal(t, "message of web-1.bbbb", ev.Note)
		require.Equal(t, "web-1", ev.Regarding.Name)
		el, err := cs.EventsV1().Events("prod").List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=web-1,reason=BackOff"})
		require.NoError(t, err)
		require.Len(t, el.Items, 1)
	})

	t.Run("delete", func(t *testing.T) {
		require.NoError(t, events.Delete(ctx, "web-1.bbbb", metav1.DeleteOptions{}))
		_, err := events.Get(ctx, "web-1.bbbb", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "%v", err)
		err = events.Delete(ctx, "web-1.bbbb", metav1.DeleteOptions{})
		require.True(t, apierrors.IsNotFound(err), "%v", err)
		l, err := events.List(ctx, metav1.ListOptions{FieldSelector: "reason=BackOff"})
		require.NoError(t, err)
		require.Empty(t, l.Items, "the delete is in the next list")
	})
}

func TestListThenWatchLosesAndRepeatsNothing(t *testing.T) {
	cs, _ := startStack(t)
	ctx := context.Background()
	events := cs.CoreV1().Events("ns1")
	for i := range 20 {
		_, err := events.Create(ctx, newEvent("ns1", fmt.Sprintf("pre.%02d", i), "Pulled"), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	list, err := events.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 20, "a list holds every create acknowledged before it")

	// Writes continue while we watch from the list's resourceVersion.
	go func() {
		for i := range 30 {
			_, _ = events.Create(ctx, newEvent("ns1", fmt.Sprintf("post.%02d", i), "Pulled"), metav1.CreateOptions{})
		}
		_ = events.Delete(ctx, "pre.00", metav1.DeleteOptions{})
	}()
	w, err := events.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	defer w.Stop()

	seen := map[string]int{}
	for _, it := range list.Items {
		seen[it.Name]++
	}
	var lastRV int
	deleted := false
	deadline := time.After(30 * time.Second)
	for len(seen) < 49 || !deleted {
		select {
		case e, ok := <-w.ResultChan():
			require.True(t, ok, "watch closed early")
			ev := e.Object.(*corev1.Event)
			var rv int
			_, _ = fmt.Sscan(ev.ResourceVersion, &rv)
			require.Greater(t, rv, lastRV, "states arrive in order")
			lastRV = rv
			switch e.Type {
			case watch.Added:
				seen[ev.Name]++
			case watch.Deleted:
				require.Equal(t, "pre.00", ev.Name)
				delete(seen, ev.Name)
				deleted = true
			default:
				t.Fatalf("unexpected %s for %s", e.Type, ev.Name)
			}
		case <-deadline:
			var names []string
			for n := range seen {
				names = append(names, n)
			}
			sort.Strings(names)
			t.Fatalf("watch incomplete after 30s: %v", names)
		}
	}
	for name, n := range seen {
		require.Equal(t, 1, n, "%s delivered %d times", name, n)
	}
}
