// Package replicas checks two `eventpipe apiserver` processes run as
// replicas of one installation (issue 18, item 4): one JetStream log, one
// ClickHouse index, one writer, and clients that may reach either replica
// on every request, as behind a Kubernetes Service. What one replica
// acknowledged the other reads at once, both watches deliver the same
// states in the same order, and tier limits hold for the two together.
package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// The tiers both replicas enforce: alpha's writes are rate limited, beta's
// stored bytes are bounded; the platform admin is limited by neither.
const testTiers = `defaultTier: Free
tiers:
  Tight:
    queryWindow: 1h
    storageQuota: "1073741824"
    rateLimit: {soft: 10, hard: 20}
  Small:
    queryWindow: 1h
    storageQuota: "%d"
    rateLimit: {soft: unlimited, hard: unlimited}
tenants:
  Project/alpha: Tight
  Project/beta: Small
`

const quotaBytes = 12000

// coreEvent is observed a minute ago, so that an EventQuery ending "now"
// (whole seconds, exclusive) holds it.
func coreEvent(ns, name string) *corev1.Event {
	now := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container " + name, Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 1}
}

func eventsEvent(ns, name string) *eventsv1.Event {
	return &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		EventTime: metav1.NewMicroTime(time.Now()), Regarding: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "web"},
		Note: "Scaled up " + name, Reason: "ScalingReplicaSet", Action: "Scale", Type: corev1.EventTypeNormal,
		ReportingController: "deployment-controller", ReportingInstance: "kcm-1"}
}

// TestReplicas runs the checks on one installation with two replicas, a
// and b; the last one kills a.
func TestReplicas(t *testing.T) {
	c := devtest.StartReplicas(t, devtest.ReplicaOptions{Replicas: 2, Tiers: fmt.Sprintf(testTiers, quotaBytes),
		// Storage usage measured every second, so that one replica counts
		// what the other stored soon after the writer commits it.
		Args: []string{"--tiers.quota-refresh", "1s"}})
	a, b := c.Servers[0], c.Servers[1]
	admin := []*kubernetes.Clientset{a.Client(t, c, "kubeconfig"), b.Client(t, c, "kubeconfig")}
	ctx := context.Background()

	t.Run("a write on one replica is read on the other at once", func(t *testing.T) {
		const ns = "ryw"
		for i := range 40 {
			// Alternate the direction: a → b, then b → a.
			w, r := admin[i%2], admin[(i+1)%2]
			name := fmt.Sprintf("core-%d", i)
			created, err := w.CoreV1().Events(ns).Create(ctx, coreEvent(ns, name), metav1.CreateOptions{})
			require.NoError(t, err)
			got, err := r.CoreV1().Events(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err, "get on the other replica right after the create")
			require.Equal(t, created.ResourceVersion, got.ResourceVersion)
			require.Equal(t, created.Message, got.Message)
			l, err := r.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			require.Contains(t, coreRVs(l.Items), name+"@"+created.ResourceVersion, "consistent list on the other replica")
			require.GreaterOrEqual(t, rvOf(t, l.ResourceVersion), rvOf(t, created.ResourceVersion))
			require.Len(t, l.Items, 2*i+1, "every event written so far, core and events.k8s.io alike")

			name = fmt.Sprintf("ev-%d", i)
			ev, err := w.EventsV1().Events(ns).Create(ctx, eventsEvent(ns, name), metav1.CreateOptions{})
			require.NoError(t, err)
			gotEv, err := r.EventsV1().Events(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err, "events.k8s.io get on the other replica right after the create")
			require.Equal(t, ev.ResourceVersion, gotEv.ResourceVersion)
			require.Equal(t, ev.Note, gotEv.Note)
			el, err := r.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			var found bool
			for _, it := range el.Items {
				found = found || it.Name == name && it.ResourceVersion == ev.ResourceVersion
			}
			require.True(t, found, "events.k8s.io consistent list on the other replica holds %s@%s", name, ev.ResourceVersion)
		}
	})

	t.Run("preconditions hold across replicas", func(t *testing.T) {
		const ns = "precond"
		created, err := admin[0].CoreV1().Events(ns).Create(ctx, coreEvent(ns, "e"), metav1.CreateOptions{})
		require.NoError(t, err)
		upd := created.DeepCopy()
		upd.Count, upd.Message = 2, "updated on b"
		updated, err := admin[1].CoreV1().Events(ns).Update(ctx, upd, metav1.UpdateOptions{})
		require.NoError(t, err, "an update on b with a's resourceVersion")
		require.Greater(t, rvOf(t, updated.ResourceVersion), rvOf(t, created.ResourceVersion))
		for i, cs := range admin {
			stale := created.DeepCopy()
			stale.Message = "stale"
			_, err := cs.CoreV1().Events(ns).Update(ctx, stale, metav1.UpdateOptions{})
			require.True(t, apierrors.IsConflict(err), "replica %d: an update at the old resourceVersion: want 409, got %v", i, err)
			rv := created.ResourceVersion
			err = cs.CoreV1().Events(ns).Delete(ctx, "e", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			require.True(t, apierrors.IsConflict(err), "replica %d: a delete at the old resourceVersion: want 409, got %v", i, err)
			got, err := cs.CoreV1().Events(ns).Get(ctx, "e", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, updated.ResourceVersion, got.ResourceVersion)
			require.Equal(t, "updated on b", got.Message)
		}
		_, err = admin[0].CoreV1().Events(ns).Create(ctx, coreEvent(ns, "e"), metav1.CreateOptions{})
		require.True(t, apierrors.IsAlreadyExists(err), "a create of a name b updated: want 409 AlreadyExists, got %v", err)
		rv := updated.ResourceVersion
		require.NoError(t, admin[0].CoreV1().Events(ns).Delete(ctx, "e",
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}), "a delete on a at b's resourceVersion")
		_, err = admin[1].CoreV1().Events(ns).Get(ctx, "e", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "deleted on a, gone on b: %v", err)
	})

	t.Run("lists at a resourceVersion written on the other replica", func(t *testing.T) {
		const ns = "listrv"
		created, err := admin[0].CoreV1().Events(ns).Create(ctx, coreEvent(ns, "e"), metav1.CreateOptions{})
		require.NoError(t, err)
		x := created.ResourceVersion
		upd := created.DeepCopy()
		upd.Count = 2
		updated, err := admin[0].CoreV1().Events(ns).Update(ctx, upd, metav1.UpdateOptions{})
		require.NoError(t, err)

		// NotOlderThan (and no match, which kube-apiserver treats alike):
		// the newest state, at a resourceVersion at or after x.
		for _, match := range []metav1.ResourceVersionMatch{"", metav1.ResourceVersionMatchNotOlderThan} {
			l, err := admin[1].CoreV1().Events(ns).List(ctx, metav1.ListOptions{ResourceVersion: x, ResourceVersionMatch: match})
			require.NoError(t, err, "match %q", match)
			require.GreaterOrEqual(t, rvOf(t, l.ResourceVersion), rvOf(t, updated.ResourceVersion), "match %q", match)
			require.Equal(t, []string{"e@" + updated.ResourceVersion}, coreRVs(l.Items), "match %q", match)
		}
		// Exact: the list as it was at x, the update not yet made.
		l, err := admin[1].CoreV1().Events(ns).List(ctx, metav1.ListOptions{ResourceVersion: x, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		require.NoError(t, err)
		require.Equal(t, x, l.ResourceVersion)
		require.Equal(t, []string{"e@" + x}, coreRVs(l.Items))

		// A paged list whose pages alternate between the replicas: the
		// continue token pins the first page's resourceVersion on either.
		all, err := admin[0].CoreV1().Events("ryw").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var paged []string
		opts := metav1.ListOptions{Limit: 25}
		for i := 0; ; i++ {
			page, err := admin[i%2].CoreV1().Events("ryw").List(ctx, opts)
			require.NoError(t, err)
			if i == 0 {
				require.Equal(t, all.ResourceVersion, page.ResourceVersion)
			}
			for _, ev := range page.Items {
				paged = append(paged, ev.Name+"@"+ev.ResourceVersion)
			}
			if page.Continue == "" {
				break
			}
			opts.Continue = page.Continue
		}
		require.Equal(t, coreRVs(all.Items), sorted(paged), "every event once across pages from both replicas")

		// A resourceVersion neither replica has reached: kube-apiserver's
		// 504 "Too large resource version" once it has waited briefly.
		ahead := strconv.FormatUint(rvOf(t, updated.ResourceVersion)+1_000_000, 10)
		_, err = admin[1].CoreV1().Events(ns).List(ctx, metav1.ListOptions{ResourceVersion: ahead, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
		require.True(t, apierrors.IsTimeout(err), "want 504, got %v", err)
		require.Contains(t, err.Error(), "Too large resource version")

		// A watch on b from x (a's write) delivers the update next.
		w, err := admin[1].CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: x})
		require.NoError(t, err)
		defer w.Stop()
		select {
		case e := <-w.ResultChan():
			require.Equal(t, watch.Modified, e.Type)
			require.Equal(t, updated.ResourceVersion, e.Object.(*corev1.Event).ResourceVersion)
		case <-time.After(30 * time.Second):
			t.Fatal("no watch event from b within 30s")
		}
	})

	t.Run("watches and informers on both replicas see the same states in the same order", func(t *testing.T) {
		const ns = "watches"
		start, err := admin[0].CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var watchers []*recorder
		for i, cs := range admin {
			w, err := cs.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: start.ResourceVersion})
			require.NoError(t, err)
			rec := &recorder{name: fmt.Sprintf("watch on %c", 'a'+i)}
			go rec.drain(w)
			t.Cleanup(w.Stop)
			watchers = append(watchers, rec)
		}
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		for i, cs := range admin {
			f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
			inf := f.Core().V1().Events().Informer()
			rec := &recorder{name: fmt.Sprintf("informer on %c", 'a'+i)}
			_, err := inf.AddEventHandler(rec.handler())
			require.NoError(t, err)
			f.Start(stop)
			require.True(t, cache.WaitForCacheSync(stop, inf.HasSynced))
			watchers = append(watchers, rec)
		}

		// Two writers, one per replica, each creating, updating on the
		// other replica and deleting on its own.
		var mu sync.Mutex
		var acked []string // "ADDED name@rv", "MODIFIED name@rv", "DELETED name"
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				own, other := admin[g], admin[1-g]
				for i := range 30 {
					name := fmt.Sprintf("w%d-%d", g, i)
					ev, err := own.CoreV1().Events(ns).Create(ctx, coreEvent(ns, name), metav1.CreateOptions{})
					if err != nil {
						errs <- err
						return
					}
					ev.Count = 2
					up, err := other.CoreV1().Events(ns).Update(ctx, ev, metav1.UpdateOptions{})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					acked = append(acked, "ADDED "+name+"@"+ev.ResourceVersion, "MODIFIED "+name+"@"+up.ResourceVersion)
					mu.Unlock()
					if i%3 == 0 {
						if err := own.CoreV1().Events(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
							errs <- err
							return
						}
						mu.Lock()
						acked = append(acked, "DELETED "+name)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for _, w := range watchers {
			devtest.WaitFor(t, w.name+" receives every state", time.Minute, func(context.Context) (bool, string) {
				n := w.len()
				return n >= len(acked), fmt.Sprintf("%d of %d", n, len(acked))
			})
		}
		first := watchers[0].all()
		require.Len(t, first, len(acked), "exactly the acknowledged states, once each")
		// Every acknowledged create and update, by its resourceVersion;
		// deletes carry a resourceVersion the client was not told.
		var seen []string
		prev := uint64(0)
		for _, s := range first {
			seen = append(seen, s.key())
			require.Greater(t, s.rv, prev, "resourceVersions increase along the watch")
			prev = s.rv
		}
		require.ElementsMatch(t, acked, seen)
		for _, w := range watchers[1:] {
			require.Equal(t, first, w.all(), "%s and %s", watchers[0].name, w.name)
		}
	})

	t.Run("EventQuery on one replica sees the other's writes up to the watermark", func(t *testing.T) {
		const ns = "history"
		created, err := admin[0].CoreV1().Events(ns).Create(ctx, coreEvent(ns, "h"), metav1.CreateOptions{})
		require.NoError(t, err)
		x := rvOf(t, created.ResourceVersion)
		// Every answer is the history at its status.resourceVersion, the
		// writer's watermark: without the event below x, with it at or
		// above, and the same on both replicas.
		for i, cs := range []*kubernetes.Clientset{admin[1], admin[0]} {
			devtest.WaitFor(t, "EventQuery shows the write", time.Minute, func(context.Context) (bool, string) {
				q := eventQuery(t, cs, ns)
				at := rvOf(t, q.Status.ResourceVersion)
				var names []string
				for _, ev := range q.Status.Results {
					names = append(names, ev.Name+"@"+ev.ResourceVersion)
				}
				if at < x {
					require.Empty(t, names, "replica %d: answered at %d, before the write at %d", i, at, x)
					return false, fmt.Sprintf("answered at %d, before %d", at, x)
				}
				require.Equal(t, []string{"h@" + created.ResourceVersion}, names, "replica %d at %d", i, at)
				return true, ""
			})
		}

		// Pages alternate between the replicas: they share the key that
		// signs continue tokens (EVENTPIPE_EVENTQUERY_CURSOR_KEY), and a
		// token pins the watermark of the first page.
		spec := v1alpha1.EventQuerySpec{StartTime: "now-1h", EndTime: "now", Namespace: "ryw", Limit: 1000}
		whole := postQuery(t, admin[0], spec)
		require.Len(t, whole.Status.Results, 80, "the events of the first subtest")
		spec.Limit = 15
		var paged []string
		for i := 0; ; i++ {
			page := postQuery(t, admin[i%2], spec)
			for _, ev := range page.Status.Results {
				paged = append(paged, ev.Name+"@"+ev.ResourceVersion)
			}
			if page.Status.Continue == "" {
				break
			}
			spec.Continue = page.Status.Continue
		}
		var want []string
		for _, ev := range whole.Status.Results {
			want = append(want, ev.Name+"@"+ev.ResourceVersion)
		}
		require.Equal(t, want, paged, "pages from both replicas, in order, each event once")
	})

	t.Run("a tenant's rate limit holds across both replicas", func(t *testing.T) {
		const ns = "rate"
		alpha := []*kubernetes.Clientset{a.Client(t, c, "kubeconfig-project-alpha"), b.Client(t, c, "kubeconfig-project-alpha")}
		// Minutes are calendar minutes: start early in one, so that every
		// write falls into it (polling the clock for a fresh minute).
		devtest.WaitFor(t, "an early second of a minute", 70*time.Second, func(context.Context) (bool, string) {
			s := time.Now().Second()
			return s < 40, fmt.Sprintf("second %d", s)
		})
		minute := time.Now().Unix() / 60
		accepted := [2]int{}
		refusedBoth := false
		for i := 0; i < 100 && !refusedBoth; i += 2 {
			var refused [2]bool
			for r := range 2 {
				err := alpha[r].CoreV1().RESTClient().Post().Namespace(ns).Resource("events").MaxRetries(0).
					Body(coreEvent(ns, fmt.Sprintf("r-%d-%d", i, r))).Do(ctx).Error()
				switch {
				case err == nil:
					accepted[r]++
				case apierrors.IsTooManyRequests(err):
					refused[r] = true
				default:
					require.NoError(t, err)
				}
			}
			refusedBoth = refused[0] && refused[1]
		}
		require.Equal(t, minute, time.Now().Unix()/60, "the writes crossed a minute boundary; the counts restarted")
		require.True(t, refusedBoth, "both replicas refuse once the tenant's minute is used up")
		require.Equal(t, 20, accepted[0]+accepted[1], "the hard limit of 20/min holds for both replicas together (a %d, b %d)", accepted[0], accepted[1])
		require.Positive(t, accepted[0])
		require.Positive(t, accepted[1])
	})

	t.Run("a tenant's storage quota holds across both replicas", func(t *testing.T) {
		const ns = "quota"
		betaCfg := []*rest.Config{a.Config(t, c, "kubeconfig-project-beta"), b.Config(t, c, "kubeconfig-project-beta")}
		beta := []*kubernetes.Clientset{a.Client(t, c, "kubeconfig-project-beta"), b.Client(t, c, "kubeconfig-project-beta")}
		stored := 0
		var refused error
		for i := 0; i < 200 && refused == nil; i++ {
			_, err := beta[0].CoreV1().Events(ns).Create(ctx, coreEvent(ns, fmt.Sprintf("q-%d", i)), metav1.CreateOptions{})
			if err != nil {
				refused = err
				break
			}
			stored++
		}
		require.True(t, apierrors.IsForbidden(refused), "a refuses once the quota is used: %v", refused)
		require.Positive(t, stored)
		// Once the writer has committed a's writes and both have measured
		// them (every --tiers.quota-refresh), both count the same bytes:
		// b without a write of its own.
		settled := func(what string) int64 {
			var used int64
			devtest.WaitFor(t, what, time.Minute, func(context.Context) (bool, string) {
				ua, ub := usage(t, betaCfg[0]), usage(t, betaCfg[1])
				used = ua
				return ua == ub && ua > 0, fmt.Sprintf("a counts %d bytes, b %d", ua, ub)
			})
			return used
		}
		settled("both replicas count what a stored")
		// b then admits at most what a's refusal left free (a may refuse a
		// write early while a state it counts as pending is also already
		// measured, never late), not a quota of its own.
		onB := 0
		for i := 0; i < 200; i++ {
			_, err := beta[1].CoreV1().Events(ns).Create(ctx, coreEvent(ns, fmt.Sprintf("qb-%d", i)), metav1.CreateOptions{})
			if err != nil {
				require.True(t, apierrors.IsForbidden(err), "b refuses with 403: %v", err)
				require.Contains(t, err.Error(), "storage quota")
				break
			}
			onB++
		}
		t.Logf("a stored %d events before its 403, b %d more before its own", stored, onB)
		require.Less(t, onB, max(stored/4, 1), "b stored %d events after a stored %d and was refused: b must count a's bytes", onB, stored)
		used := settled("both replicas count every write")
		perEvent := used / int64(stored+onB)
		require.LessOrEqual(t, used, int64(quotaBytes), "usage within the quota")
		require.Greater(t, used+perEvent, int64(quotaBytes), "the quota is used up to its last event (%d bytes an event)", perEvent)
	})

	t.Run("a replica cut off from JetStream is not ready until it is back", func(t *testing.T) {
		natsAddr := strings.TrimPrefix(c.Env.NATSURL, "nats://")
		path := startService(t, backend{"nats", natsAddr})
		cut := c.Add(t, "--nats.url", "nats://"+path.addr())
		code, body, err := cut.Readyz(t)
		require.NoError(t, err)
		require.Equal(t, 200, code, body)
		require.Contains(t, body, "[+]jetstream ok")
		path.setCut(true)
		devtest.WaitFor(t, "readyz fails on the replica without NATS", 30*time.Second, func(context.Context) (bool, string) {
			code, body, err := cut.Readyz(t)
			return err == nil && code == 500 && strings.Contains(body, "[-]jetstream failed"), fmt.Sprint(code, body, err)
		})
		// The others stay ready: the Service keeps sending to them.
		for _, s := range []*devtest.APIServer{a, b} {
			code, body, err := s.Readyz(t)
			require.NoError(t, err)
			require.Equal(t, 200, code, "%s: %s", s.Name, body)
		}
		path.setCut(false)
		devtest.WaitFor(t, "readyz recovers once NATS is reachable again", time.Minute, func(context.Context) (bool, string) {
			code, body, err := cut.Readyz(t)
			return err == nil && code == 200, fmt.Sprint(code, body, err)
		})
		_, err = cut.Client(t, c, "kubeconfig").CoreV1().Events("ryw").Get(ctx, "core-0", metav1.GetOptions{})
		require.NoError(t, err, "and serves again")
		cut.Stop(t)
	})

	t.Run("a replica killed: watches resume from their resourceVersion on the other", func(t *testing.T) {
		const ns = "failover"
		l, err := admin[0].CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		w, err := admin[0].CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
		require.NoError(t, err)
		onA := &recorder{name: "watch on a"}
		go onA.drain(w)
		var acked []string
		write := func(i int) {
			ev, err := admin[1].CoreV1().Events(ns).Create(ctx, coreEvent(ns, fmt.Sprintf("f-%d", i)), metav1.CreateOptions{})
			require.NoError(t, err)
			acked = append(acked, "ADDED "+ev.Name+"@"+ev.ResourceVersion)
		}
		// An informer behind a "Service" that sends each connection to
		// the first replica that takes it: a, until a is gone.
		svc := startService(t, replicaBackends(a, b)...)
		cfg := a.Config(t, c, "kubeconfig")
		cfg.Host, cfg.TLSClientConfig = "https://"+svc.addr(), rest.TLSClientConfig{CAFile: caBundle(t, a, b)}
		viaSvc, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		stop := make(chan struct{})
		defer close(stop)
		f := informers.NewSharedInformerFactoryWithOptions(viaSvc, 0, informers.WithNamespace(ns))
		inf := f.Core().V1().Events().Informer()
		informed := &recorder{name: "informer through the service"}
		_, err = inf.AddEventHandler(informed.handler())
		require.NoError(t, err)
		f.Start(stop)
		require.True(t, cache.WaitForCacheSync(stop, inf.HasSynced))
		require.Equal(t, "a", svc.lastBackend(), "the service sends to a while it is up")

		for i := range 10 {
			write(i)
		}
		devtest.WaitFor(t, "the watch and the informer on a have the first writes", 30*time.Second, func(context.Context) (bool, string) {
			return onA.len() >= 10 && informed.len() >= 10, fmt.Sprint(onA.len(), informed.len())
		})
		a.Kill()
		devtest.WaitFor(t, "a's watch ends with the process", 30*time.Second, func(context.Context) (bool, string) {
			return onA.ended(), "still open"
		})
		// Written while the client reconnects.
		for i := 10; i < 20; i++ {
			write(i)
		}
		got := onA.all()
		last := got[len(got)-1].rv
		w2, err := admin[1].CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatUint(last, 10)})
		require.NoError(t, err)
		defer w2.Stop()
		onB := &recorder{name: "watch on b"}
		go onB.drain(w2)
		devtest.WaitFor(t, "the resumed watch on b has the rest", 30*time.Second, func(context.Context) (bool, string) {
			return len(got)+onB.len() >= len(acked), fmt.Sprintf("%d+%d of %d", len(got), onB.len(), len(acked))
		})
		var seen []string
		for _, s := range append(got, onB.all()...) {
			seen = append(seen, s.key())
		}
		require.Equal(t, acked, seen, "every state once, in order, across the failover")
		// The informer's reflector watched again from its last
		// resourceVersion through the service, now on b: every state
		// once, in order, and no relist (which would replay each event
		// to the handler as an update).
		devtest.WaitFor(t, "the informer has every state", 30*time.Second, func(context.Context) (bool, string) {
			return informed.len() >= len(acked), fmt.Sprintf("%d of %d", informed.len(), len(acked))
		})
		seen = seen[:0]
		for _, s := range informed.all() {
			seen = append(seen, s.key())
		}
		require.Equal(t, acked, seen, "the informer through the service: every state once, in order")
		require.Equal(t, "b", svc.lastBackend(), "the service sends to b once a is gone")
		a.Restart(t)
		_, err = admin[0].CoreV1().Events(ns).Get(ctx, "f-19", metav1.GetOptions{})
		require.NoError(t, err, "a serves again after its restart, with what b acknowledged meanwhile")
	})
}

// state is one watch event as a test compares it.
type state struct {
	typ  watch.EventType
	name string
	rv   uint64
}

func (s state) key() string {
	if s.typ == watch.Deleted {
		return "DELETED " + s.name
	}
	return fmt.Sprintf("%s %s@%d", s.typ, s.name, s.rv)
}

// recorder keeps what a watch or an informer delivered, in order.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []state
	done bool
}

func (r *recorder) add(typ watch.EventType, obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		if d, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
			ev, _ = d.Obj.(*corev1.Event)
		}
	}
	if ev == nil {
		return
	}
	rv, _ := strconv.ParseUint(ev.ResourceVersion, 10, 64)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, state{typ: typ, name: ev.Name, rv: rv})
}

func (r *recorder) drain(w watch.Interface) {
	for e := range w.ResultChan() {
		switch e.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			r.add(e.Type, e.Object)
		case watch.Error:
			r.add(watch.Error, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(apierrors.FromObject(e.Object))}})
		}
	}
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
}

func (r *recorder) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.add(watch.Added, obj) },
		UpdateFunc: func(_, obj any) { r.add(watch.Modified, obj) },
		DeleteFunc: func(obj any) { r.add(watch.Deleted, obj) },
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) all() []state {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]state(nil), r.got...)
}

func (r *recorder) ended() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

func coreRVs(items []corev1.Event) []string {
	out := make([]string, len(items))
	for i, ev := range items {
		out[i] = ev.Name + "@" + ev.ResourceVersion
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func rvOf(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err, "resourceVersion %q", s)
	return v
}

// eventQuery asks cs for the last hour of history in ns.
func eventQuery(t *testing.T, cs *kubernetes.Clientset, ns string) *v1alpha1.EventQuery {
	t.Helper()
	return postQuery(t, cs, v1alpha1.EventQuerySpec{StartTime: "now-1h", EndTime: "now", Namespace: ns, Limit: 100})
}

func postQuery(t *testing.T, cs *kubernetes.Clientset, spec v1alpha1.EventQuerySpec) *v1alpha1.EventQuery {
	t.Helper()
	q := &v1alpha1.EventQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "EventQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: spec}
	body, err := json.Marshal(q)
	require.NoError(t, err)
	raw, err := cs.Discovery().RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/eventqueries").Body(body).
		SetHeader("Content-Type", "application/json").Do(context.Background()).Raw()
	require.NoError(t, err, "%s", raw)
	var out v1alpha1.EventQuery
	require.NoError(t, json.Unmarshal(raw, &out))
	return &out
}

var tenantUsages = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "tenantusages"}

// usage is the caller's stored bytes as the replica cfg talks to counts them.
func usage(t *testing.T, cfg *rest.Config) int64 {
	t.Helper()
	dc, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	l, err := dc.Resource(tenantUsages).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, l.Items, 1)
	used, _, _ := unstructured.NestedInt64(l.Items[0].Object, "status", "storageUsedBytes")
	return used
}

// service stands for a Kubernetes Service in front of the replicas (or
// for the network path to NATS): each new TCP connection goes to the first
// backend that accepts one, so a killed replica's clients reconnect to the
// next. While cut, it drops every connection and refuses new ones, as a
// network partition would.
type service struct {
	ln       net.Listener
	backends []backend
	mu       sync.Mutex
	conns    map[net.Conn]bool
	last     string
	cut      bool
	wg       sync.WaitGroup
}

type backend struct{ name, addr string }

func replicaBackends(servers ...*devtest.APIServer) []backend {
	var out []backend
	for _, s := range servers {
		out = append(out, backend{s.Name, "127.0.0.1:" + strconv.Itoa(s.Port)})
	}
	return out
}

func startService(t *testing.T, backends ...backend) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &service{ln: ln, backends: backends, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		s.closeAll()
		s.wg.Wait()
	})
	return s
}

func (s *service) addr() string { return s.ln.Addr().String() }

func (s *service) lastBackend() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// setCut cuts the path (dropping every connection) or restores it.
func (s *service) setCut(cut bool) {
	s.mu.Lock()
	s.cut = cut
	s.mu.Unlock()
	if cut {
		s.closeAll()
	}
}

func (s *service) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// track adds or removes c; it refuses to add one while the path is cut.
func (s *service) track(c net.Conn, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		delete(s.conns, c)
		return true
	}
	if s.cut {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *service) accept() {
	defer s.wg.Done()
	for {
		in, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer in.Close()
			if !s.track(in, true) {
				return
			}
			defer s.track(in, false)
			var out net.Conn
			for _, b := range s.backends {
				if out, err = net.DialTimeout("tcp", b.addr, time.Second); err == nil {
					s.mu.Lock()
					s.last = b.name
					s.mu.Unlock()
					break
				}
			}
			if out == nil {
				return
			}
			defer out.Close()
			if !s.track(out, true) {
				return
			}
			defer s.track(out, false)
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
			<-done // either side ended: end both, as a dead endpoint's connections end
			_ = in.Close()
			_ = out.Close()
			<-done
		}()
	}
}

// caBundle is a file that trusts every given replica's certificate.
func caBundle(t *testing.T, servers ...*devtest.APIServer) string {
	t.Helper()
	var all []byte
	for _, s := range servers {
		b, err := os.ReadFile(s.CAFile())
		require.NoError(t, err)
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(path, all, 0o644))
	return path
}
