package clientgo

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// recoverWithin bounds how long an informer may take to converge after
// eventpipe is back (the reflector backs off up to 30s; with a short
// outage it retries within a few seconds).
const recoverWithin = 30 * time.Second

// probe is the informer's ListerWatcher: the typed client's list and watch
// of core/v1 Events in all namespaces, counting what the reflector asks for
// (lists, watch-lists, watches), the errors it gets, and holding requests
// while the gate is closed, to keep the informer disconnected.
type probe struct {
	client kubernetes.Interface
	// watchList lets the reflector use watch-list (sendInitialEvents); when
	// false it lists and then watches.
	watchList bool

	mu         sync.Mutex
	gate       chan struct{} // nil: open; otherwise closed when it opens
	lists      int           // list requests (pages included)
	watchLists int           // watch requests with sendInitialEvents=true
	watches    int           // watch requests from a resourceVersion
	expired    int           // 410s, from lists or in watch streams
	refused    int           // 401s and 403s: credentials no longer accepted
	failures   []string      // every error, in order
	trace      []string      // every request, in order
}

var (
	_ cache.ListerWatcherWithContext = (*probe)(nil)
	_ cache.ListerWatcher            = (*probe)(nil)
)

// IsWatchListSemanticsUnSupported is what client-go's reflector asks to
// decide between watch-list and list-then-watch.
func (p *probe) IsWatchListSemanticsUnSupported() bool { return !p.watchList }

func (p *probe) List(opts metav1.ListOptions) (runtime.Object, error) {
	return p.ListWithContext(context.Background(), opts)
}

func (p *probe) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return p.WatchWithContext(context.Background(), opts)
}

func (p *probe) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	p.note(func() { p.lists++ }, "list rv=%q limit=%d continue=%t", opts.ResourceVersion, opts.Limit, opts.Continue != "")
	l, err := p.client.CoreV1().Events(metav1.NamespaceAll).List(ctx, opts)
	if err != nil {
		p.fail("list", err)
		return nil, err
	}
	p.note(nil, "  list answered at rv=%s with %d items", l.ResourceVersion, len(l.Items))
	return l, nil
}

func (p *probe) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		p.note(func() { p.watchLists++ }, "watch-list rv=%q", opts.ResourceVersion)
	} else {
		p.note(func() { p.watches++ }, "watch rv=%q", opts.ResourceVersion)
	}
	w, err := p.client.CoreV1().Events(metav1.NamespaceAll).Watch(ctx, opts)
	if err != nil {
		p.fail("watch", err)
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if e.Type == watch.Error {
			p.fail("watch stream", apierrors.FromObject(e.Object))
		}
		return e, true
	}), nil
}

func (p *probe) note(count func(), format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if count != nil {
		count()
	}
	p.trace = append(p.trace, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (p *probe) fail(what string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		p.expired++
	}
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		p.refused++
	}
	line := fmt.Sprintf("%s: %v", what, err)
	p.failures = append(p.failures, line)
	p.trace = append(p.trace, time.Now().Format("15:04:05.000 ")+"  "+line)
}

// close holds the informer's next requests until open.
func (p *probe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate == nil {
		p.gate = make(chan struct{})
	}
}

func (p *probe) open() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

func (p *probe) wait(ctx context.Context) error {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	if g == nil {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type counts struct{ lists, watchLists, watches, expired, refused, failures int }

func (p *probe) counts() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return counts{p.lists, p.watchLists, p.watches, p.expired, p.refused, len(p.failures)}
}

// relists is how many times the reflector fetched the whole state: by
// watch-list, or by a list's first page.
func (p *probe) relists() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.watchLists
	for _, l := range p.trace {
		if strings.Contains(l, " list rv=") && strings.HasSuffix(l, "continue=false") {
			n++
		}
	}
	return n
}

func (p *probe) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.trace, "\n")
}

// informer is a shared informer on core/v1 Events from client-go's
// informer factory, whose ListerWatcher is a probe.
type informer struct {
	p   *probe
	inf cache.SharedIndexInformer
	// deleted counts delete notifications per name.
	mu      sync.Mutex
	deleted map[string]int
	// watchErrors counts the reflector's ListAndWatch failures.
	watchErrors int
}

func startInformer(t *testing.T, cs kubernetes.Interface, watchList bool) *informer {
	t.Helper()
	in := &informer{p: &probe{client: cs, watchList: watchList}, deleted: map[string]int{}}
	factory := informers.NewSharedInformerFactory(cs, 0)
	factory.InformerFor(&corev1.Event{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return cache.NewSharedIndexInformer(in.p, &corev1.Event{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	})
	in.inf = factory.Core().V1().Events().Informer() // the one registered above
	require.NoError(t, in.inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		in.mu.Lock()
		in.watchErrors++
		in.mu.Unlock()
		in.p.note(nil, "  reflector error: %v", err)
	}))
	_, err := in.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		in.mu.Lock()
		in.deleted[obj.(*corev1.Event).Name]++
		in.mu.Unlock()
	}})
	require.NoError(t, err)
	stop := make(chan struct{})
	factory.Start(stop)
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	ctx, cancel := context.WithTimeout(context.Background(), recoverWithin)
	defer cancel()
	require.True(t, cache.WaitForCacheSync(ctx.Done(), in.inf.HasSynced), "informer did not sync:\n%s", in.p)
	return in
}

func (in *informer) deletes(name string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.deleted[name]
}

// state renders events as namespace/name -> resourceVersion and count.
type state map[string]string

func stateOf[E any](items []E, get func(E) *corev1.Event) state {
	s := state{}
	for _, it := range items {
		e := get(it)
		s[e.Namespace+"/"+e.Name] = fmt.Sprintf("rv=%s count=%d", e.ResourceVersion, e.Count)
	}
	return s
}

// names renders a state without resourceVersions: name -> count.
func (s state) names() map[string]string {
	out := map[string]string{}
	for k, v := range s {
		out[k] = v[strings.Index(v, " ")+1:]
	}
	return out
}

// converge waits until the informer's store, a fresh list and want (name ->
// "count=N") agree, and returns how long that took.
func (in *informer) converge(t *testing.T, cs kubernetes.Interface, want map[string]string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	var store, list state
	var lastErr error
	for time.Since(start) < within {
		if c := in.p.counts(); c.refused > 0 {
			// Not something a client recovers from by retrying.
			t.Fatalf("the informer's credentials were refused; requests:\n%s", in.p)
		}
		store = stateOf(in.inf.GetStore().List(), func(o any) *corev1.Event { return o.(*corev1.Event) })
		l, err := cs.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		lastErr = err
		if err == nil {
			list = stateOf(l.Items, func(e corev1.Event) *corev1.Event { return &e })
			if fmt.Sprint(store) == fmt.Sprint(list) && fmt.Sprint(list.names()) == fmt.Sprint(want) {
				return time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no convergence within %s (last list error: %v)\nwant:  %v\nstore: %v\nlist:  %v\nrequests:\n%s",
		within, lastErr, want, sortedState(store), sortedState(list), in.p)
	return 0
}

func sortedState(s state) string {
	var out []string
	for k, v := range s {
		out = append(out, k+" "+v)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// steady requires that the informer makes no request and gets no error for
// a while: no error loop.
func (in *informer) steady(t *testing.T, d time.Duration) {
	t.Helper()
	before := in.p.counts()
	time.Sleep(d)
	require.Equal(t, before, in.p.counts(), "the informer kept asking or failing after it converged:\n%s", in.p)
}

// writes is a small event writer that keeps the expected state.
type writes struct {
	t    *testing.T
	cs   kubernetes.Interface
	ns   string
	want map[string]string // namespace/name -> "count=N"
}

func newWrites(t *testing.T, cs kubernetes.Interface, ns string) *writes {
	return &writes{t: t, cs: cs, ns: ns, want: map[string]string{}}
}

func (w *writes) create(name string) *corev1.Event {
	w.t.Helper()
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	ev, err := w.cs.CoreV1().Events(w.ns).Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: w.ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: w.ns, Name: "web-1", UID: "uid-web-1", APIVersion: "v1"},
		Reason:         "Started", Message: "started " + name, Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	require.NoError(w.t, err, "create %s", name)
	w.want[w.ns+"/"+name] = "count=1"
	return ev
}

// bump raises an event's count by an update (read, modify, write).
func (w *writes) bump(name string, to int32) *corev1.Event {
	w.t.Helper()
	ctx := context.Background()
	cur, err := w.cs.CoreV1().Events(w.ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(w.t, err, "get %s", name)
	cur.Count = to
	cur.LastTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
	ev, err := w.cs.CoreV1().Events(w.ns).Update(ctx, cur, metav1.UpdateOptions{})
	require.NoError(w.t, err, "update %s", name)
	w.want[w.ns+"/"+name] = fmt.Sprintf("count=%d", to)
	return ev
}

// patch sets an event's count by a strategic merge patch, as the core
// recorder does.
func (w *writes) patch(name string, to int32) *corev1.Event {
	w.t.Helper()
	ev, err := w.cs.CoreV1().Events(w.ns).Patch(context.Background(), name, types.StrategicMergePatchType,
		[]byte(fmt.Sprintf(`{"count":%d}`, to)), metav1.PatchOptions{})
	require.NoError(w.t, err, "patch %s", name)
	w.want[w.ns+"/"+name] = fmt.Sprintf("count=%d", to)
	return ev
}

func (w *writes) delete(name string) {
	w.t.Helper()
	require.NoError(w.t, w.cs.CoreV1().Events(w.ns).Delete(context.Background(), name, metav1.DeleteOptions{}), "delete %s", name)
	delete(w.want, w.ns+"/"+name)
}

func rvNum(t *testing.T, o interface{ GetResourceVersion() string }) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	require.NoError(t, err)
	return v
}

// TestInformerAcrossRestart: an informer stays in sync while eventpipe
// stops and starts again on the same data directory and port, with writes
// while it reconnects and after: it resumes its watch, without a relist, a
// 410 or an error loop.
func TestInformerAcrossRestart(t *testing.T) {
	inBothModes(t, func(t *testing.T, watchList bool) {
		s := devtest.New(t)
		w := newWrites(t, s.Client(), "restart")
		// The informer starts on an empty store, as a controller would,
		// and keeps its client (and credentials) across the restart.
		in := startInformer(t, devtest.NewClient(t, s.Cfg), watchList)
		for i := range 5 {
			w.create(fmt.Sprintf("e.%d", i))
		}
		w.bump("e.1", 2)
		t.Logf("synced in %s", in.converge(t, s.Client(), w.want, recoverWithin))
		before := in.p.counts()

		down := s.Restart()
		// Writes right after the restart, most likely before the
		// informer is back (it is backing off), by a new client, as
		// kubectl would make one.
		w.cs = s.Client()
		w.create("e.5")
		w.create("e.6")
		w.bump("e.2", 5)
		w.patch("e.3", 7)
		w.delete("e.0")
		took := in.converge(t, s.Client(), w.want, recoverWithin)
		t.Logf("restart took %s; informer converged %s after it", down.Round(time.Millisecond), took.Round(time.Millisecond))
		require.Equal(t, 1, in.deletes("e.0"), "one delete notification for e.0")

		// The resumed watch carries later writes.
		w.create("e.7")
		w.delete("e.1")
		w.patch("e.5", 3)
		in.converge(t, s.Client(), w.want, 10*time.Second)
		in.steady(t, 2*time.Second)

		after := in.p.counts()
		t.Logf("requests:\n%s", in.p)
		require.Zero(t, after.expired, "no 410 across a restart")
		require.Equal(t, before.lists, after.lists, "no relist across a restart")
		require.Equal(t, before.watchLists, after.watchLists, "no relist across a restart")
		require.Equal(t, 1, in.p.relists(), "one list in all, at start")
	})
}

// inBothModes runs test once for each way an informer can start: a
// streaming watch-list, and a list followed by a watch. Both must survive
// what the tests do to the server.
func inBothModes(t *testing.T, test func(t *testing.T, watchList bool)) {
	for _, mode := range []struct {
		name      string
		watchList bool
	}{{"watch-list", true}, {"list-then-watch", false}} {
		t.Run(mode.name, func(t *testing.T) { test(t, mode.watchList) })
	}
}

// TestInformerAcrossForced410: while an informer is disconnected (held by
// its ListerWatcher across a restart), events are written and the stream is
// purged up to the writer's watermark, so the informer's resourceVersion is
// older than the stream. Its watch must get 410 Expired; it must relist
// once and converge, and then follow later writes.
func TestInformerAcrossForced410(t *testing.T) {
	inBothModes(t, func(t *testing.T, watchList bool) {
		s := devtest.New(t)
		w := newWrites(t, s.Client(), "expiry")
		for i := range 5 {
			w.create(fmt.Sprintf("e.%d", i))
		}
		in := startInformer(t, devtest.NewClient(t, s.Cfg), watchList)
		w.bump("e.1", 2)
		in.converge(t, s.Client(), w.want, recoverWithin)
		require.Equal(t, 1, in.p.relists(), "one list at start")
		lastSeen := in.inf.LastSyncResourceVersion()

		in.p.close()
		s.Restart()
		ctx := context.Background()
		w.cs = s.Client()
		w.create("e.5")
		w.create("e.6")
		w.bump("e.2", 4)
		w.patch("e.3", 9)
		w.delete("e.0")
		last := w.create("e.7")
		require.NoError(t, s.Env.Writer.WaitFor(ctx, rvNum(t, last)))
		stream, err := s.Env.JS.Stream(ctx, eventlog.StreamName)
		require.NoError(t, err)
		wm := s.Env.Writer.Watermark()
		require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(wm+1)))
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		seen, err := strconv.ParseUint(lastSeen, 10, 64)
		require.NoError(t, err)
		require.Less(t, seen+1, info.State.FirstSeq, "the informer's resourceVersion %d is older than the stream (first %d)", seen, info.State.FirstSeq)
		t.Logf("informer at rv %d; stream purged to %d (watermark %d)", seen, info.State.FirstSeq, wm)

		in.p.open()
		took := in.converge(t, s.Client(), w.want, recoverWithin)
		t.Logf("converged %s after the gate opened", took.Round(time.Millisecond))
		require.Equal(t, 1, in.deletes("e.0"), "one delete notification for e.0")

		// After the relist the watch follows new writes, including
		// updates and deletes of events the log no longer holds.
		w.create("e.8")
		w.bump("e.5", 2)
		w.patch("e.6", 6)
		w.delete("e.4")
		in.converge(t, s.Client(), w.want, 10*time.Second)
		in.steady(t, 2*time.Second)

		c := in.p.counts()
		t.Logf("requests:\n%s", in.p)
		require.Equal(t, 1, c.expired, "exactly one 410")
		require.Equal(t, 2, in.p.relists(), "one relist after the 410 (plus the first list)")
	})
}
