package etcdfront_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"

	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// waitFor polls cond every interval until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, state)
		}
		<-tick.C
	}
}

// eventQuery asks eventpipe's own API server, as the platform admin, for
// the events of the front's scope in the last hour.
func (s *stack) eventQuery(t *testing.T, fieldSelector string) []eventsv1.Event {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	q := v1alpha1.EventQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "EventQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: v1alpha1.EventQuerySpec{StartTime: "now-1h", EndTime: "now", FieldSelector: fieldSelector, Limit: 1000}}
	for {
		b, _ := json.Marshal(q)
		raw, err := cs.Discovery().RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/eventqueries").Body(b).
			SetHeader("Content-Type", "application/json").Do(context.Background()).Raw()
		if err != nil {
			t.Fatalf("EventQuery: %v: %s", err, raw)
		}
		var got v1alpha1.EventQuery
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		out = append(out, got.Status.Results...)
		if got.Status.Continue == "" {
			return out
		}
		q.Spec.Continue = got.Status.Continue
	}
}

// TestEventTTL: with --event-ttl=2m, events leave kube-apiserver's lists and
// watches after two minutes, as with etcd, and history keeps them.
func TestEventTTL(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Minute
	s := start(t, kubetest.Options{EventTTL: ttl})
	ctx := context.Background()
	ev := s.client.CoreV1().Events("default")
	w, err := ev.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created := time.Now()
	const n = 20
	for i := range n {
		if _, err := ev.Create(ctx, event("default", fmt.Sprintf("ttl-%02d", i), "Expiring"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	waitFor(t, "events listed", time.Minute, func() (bool, string) {
		l, err := ev.List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == n, fmt.Sprint(err, len(l.Items))
	})
	waitFor(t, "events gone from the list", ttl+2*time.Minute, func() (bool, string) {
		l, err := ev.List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, fmt.Sprint(err, len(l.Items))
	})
	if gone := time.Since(created); gone < ttl {
		t.Fatalf("events gone after %s, before their TTL of %s", gone, ttl)
	}
	deleted := 0
	deadline := time.After(time.Minute)
	for deleted < n {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d deletions", deleted)
			}
			if e.Type == watch.Deleted {
				deleted++
			}
		case <-deadline:
			t.Fatalf("the watch saw %d of %d expiries", deleted, n)
		}
	}
	if _, err := ev.Get(ctx, "ttl-00", metav1.GetOptions{}); err == nil {
		t.Fatal("get of an expired event succeeded; want NotFound")
	}
	waitFor(t, "expired events in history", time.Minute, func() (bool, string) {
		got := s.eventQuery(t, "reason=Expiring")
		return len(got) == n, fmt.Sprint(len(got))
	})
}

// TestTenThousandEventsOutOfEtcd writes 10,000 events through
// kube-apiserver with kubectl and with client-go's core/v1 and
// events.k8s.io/v1 recorders: etcd holds none, eventpipe all, and both
// kubectl through kube-apiserver and an EventQuery through the same
// kube-apiserver (eventpipe aggregated for activity.miloapis.com) return
// them.
func TestTenThousandEventsOutOfEtcd(t *testing.T) {
	t.Parallel()
	s := start(t, kubetest.Options{})
	ctx := context.Background()
	// History through the same kube-apiserver: eventpipe's API server
	// aggregated for activity.miloapis.com (see aggregated_test.go).
	s.cluster.AggregateEventpipe(startAggregatedAPIServer(t, s.env, s.cluster))
	const viaKubectl, viaCore, viaEvents = 1000, 4500, 4500
	const total = viaKubectl + viaCore + viaEvents

	// kubectl: one List of 1,000 Events.
	list := corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for i := range viaKubectl {
		e := event("default", fmt.Sprintf("kubectl-%04d", i), "ViaKubectl")
		e.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}
		b, _ := json.Marshal(e)
		list.Items = append(list.Items, runtimeRaw(b))
	}
	b, _ := json.Marshal(list)
	f := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := kubetest.Kubectl(t, s.cluster.Kubeconfig, "create", "-f", f); err != nil {
		t.Fatalf("kubectl create: %v\n%s", err, stderr)
	}

	// client-go's recorders, one event per object (a recorder folds
	// repeats for one object). Their sinks are counted: a recorder drops
	// what its queue cannot hold, which is the client's choice, not a loss
	// in storage, so each is fed a batch at a time and every event it
	// emits must have been created before the next batch.
	coreSink := &countingSink{EventSinkImpl: typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")}}
	coreB := record.NewBroadcaster()
	coreB.StartRecordingToSink(coreSink)
	defer coreB.Shutdown()
	rec := coreB.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "etcdfront-test"})
	for i := range viaCore {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("core-%04d", i), UID: "u"}}
		rec.Eventf(pod, corev1.EventTypeNormal, "ViaCoreRecorder", "event %d", i)
		if (i+1)%250 == 0 {
			waitFor(t, "core/v1 recorder's events created", 2*time.Minute, coreSink.reached(i+1))
		}
	}

	evSink := &countingEventsSink{EventSinkImpl: events.EventSinkImpl{Interface: s.client.EventsV1()}}
	evB := events.NewBroadcaster(evSink)
	stop := make(chan struct{})
	evB.StartRecordingToSink(stop)
	defer func() { close(stop); evB.Shutdown() }()
	evRec := evB.NewRecorder(scheme.Scheme, "example.com/etcdfront-test")
	for i := range viaEvents {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("ev-%04d", i), UID: "u"}}
		evRec.Eventf(pod, nil, corev1.EventTypeNormal, "ViaEventsRecorder", "Sync", "event %d", i)
		if (i+1)%250 == 0 {
			waitFor(t, "events.k8s.io recorder's events created", 2*time.Minute, evSink.reached(i+1))
		}
	}
	stored := func(want int) func() (bool, string) {
		return func() (bool, string) {
			n := s.stored(t, ctx)
			return n >= uint64(want), fmt.Sprint(n)
		}
	}
	waitFor(t, "all events stored", time.Minute, stored(total))
	if n := s.stored(t, ctx); n != total {
		t.Fatalf("eventpipe holds %d events, want %d", n, total)
	}
	if n := s.etcdEventKeys(t); n != 0 {
		t.Fatalf("etcd holds %d keys under /registry/events/, want 0", n)
	}
	out, stderr, err := kubetest.Kubectl(t, s.cluster.Kubeconfig, "get", "events", "-A", "--no-headers")
	if err != nil {
		t.Fatalf("kubectl get events -A: %v\n%s", err, stderr)
	}
	if n := strings.Count(out, "\n"); n != total {
		t.Fatalf("kubectl get events -A through kube-apiserver: %d lines, want %d", n, total)
	}
	for reason, want := range map[string]int{"ViaKubectl": viaKubectl, "ViaCoreRecorder": viaCore, "ViaEventsRecorder": viaEvents} {
		got, err := hostEventQuery(ctx, s.client, "reason="+reason)
		if err != nil || len(got) != want {
			t.Errorf("EventQuery reason=%s through kube-apiserver's APIService: %d events, %v; want %d", reason, len(got), err, want)
		}
	}
}

// countingSink counts the core/v1 Events its recorder created, and keeps
// the last error.
type countingSink struct {
	typedcorev1.EventSinkImpl
	created atomic.Int64
	lastErr atomic.Value
}

func (c *countingSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out, err := c.EventSinkImpl.Create(e)
	if err != nil {
		c.lastErr.Store(err.Error())
	} else {
		c.created.Add(1)
	}
	return out, err
}

func (c *countingSink) reached(n int) func() (bool, string) {
	return func() (bool, string) {
		return c.created.Load() >= int64(n), fmt.Sprintf("%d created, last error: %v", c.created.Load(), c.lastErr.Load())
	}
}

// countingEventsSink is countingSink for events.k8s.io/v1.
type countingEventsSink struct {
	events.EventSinkImpl
	created atomic.Int64
	lastErr atomic.Value
}

func (c *countingEventsSink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	out, err := c.EventSinkImpl.Create(ctx, e)
	if err != nil {
		c.lastErr.Store(err.Error())
	} else {
		c.created.Add(1)
	}
	return out, err
}

func (c *countingEventsSink) reached(n int) func() (bool, string) {
	return func() (bool, string) {
		return c.created.Load() >= int64(n), fmt.Sprintf("%d created, last error: %v", c.created.Load(), c.lastErr.Load())
	}
}
