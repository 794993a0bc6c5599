package jscluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// runDev runs dev mode's roles on o until ctx ends and returns its
// environment once it serves, and a channel with what devenv.Run returned.
func runDev(t *testing.T, ctx context.Context, o devenv.Options) (*devenv.Env, <-chan error) {
	t.Helper()
	envc, errc := make(chan *devenv.Env, 1), make(chan error, 1)
	go func() {
		errc <- devenv.Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)), func(e *devenv.Env) { envc <- e })
	}()
	select {
	case env := <-envc:
		return env, errc
	case err := <-errc:
		t.Fatalf("eventpipe stopped during start-up: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("eventpipe not ready in 2m")
	}
	return nil, nil
}

func client(t *testing.T, env *devenv.Env) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return devtest.NewClient(t, cfg)
}

func createEvent(t *testing.T, cs kubernetes.Interface, name string) uint64 {
	t.Helper()
	now := metav1.NewTime(time.Now())
	ev, err := cs.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
		Reason:         "Started", Type: corev1.EventTypeNormal, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv, _ := strconv.ParseUint(ev.ResourceVersion, 10, 64)
	return rv
}

// TestStreamRecreated deletes EVENTS under running eventpipe roles and
// creates it again, so that its sequences start over. The API server and
// the writer notice and stop instead of serving or indexing the new
// stream's sequences as if they continued the old ones; started again,
// they refuse to start and say why. After the documented repair (move the
// new stream's first sequence past the old history, record it), eventpipe
// serves again: a watch from an old resourceVersion gets 410 Gone, new
// creates get resourceVersions above every old one, and nothing of the
// old history is served twice.
func TestStreamRecreated(t *testing.T) {
	nsrv := natstest.ForTest(t)
	o := devtest.Options(t)
	o.NATSURL = nsrv.ClientURL()
	o.Activities = false
	o.EtcdPort = -1
	o.Writer.BatchWait = 50 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	env, errc := runDev(t, ctx, o)
	cs := client(t, env)
	var oldLast uint64
	for i := range 20 {
		oldLast = createEvent(t, cs, fmt.Sprintf("before.%02d", i))
	}
	if err := env.Writer.WaitFor(ctx, oldLast); err != nil {
		t.Fatal(err)
	}

	// An operator deletes EVENTS; something creates it again.
	js := nsrv.JS
	if err := js.DeleteStream(context.Background(), eventlog.StreamName); err != nil {
		t.Fatal(err)
	}
	if err := eventlog.Ensure(context.Background(), js, eventlog.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, eventlog.ErrStreamRecreated) {
			t.Fatalf("eventpipe stopped with %v, want %v", err, eventlog.ErrStreamRecreated)
		}
		t.Logf("running eventpipe stopped: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("eventpipe still runs 30s after EVENTS was recreated")
	}
	cancel()

	// Started again, it refuses.
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := devenv.Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !errors.Is(err, eventlog.ErrStreamRecreated) {
		t.Fatalf("eventpipe started on a recreated stream: %v", err)
	}

	// The repair: the new stream, still empty, starts past the old
	// history; its creation time is recorded as the one to count.
	s, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(oldLast+1)); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != oldLast+1 {
		t.Fatalf("after the purge the stream starts at %d, want %d", info.State.FirstSeq, oldLast+1)
	}
	kv, err := js.KeyValue(ctx, eventlog.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, eventlog.StreamEpochKey, []byte(info.Created.UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	env, errc = runDev(t, runCtx, o)
	defer func() {
		stop()
		if err := <-errc; err != nil {
			t.Errorf("eventpipe stopped with: %v", err)
		}
	}()
	cs = client(t, env)
	// A watch from the old history is told to relist.
	w, err := cs.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatUint(oldLast-5, 10)})
	if err == nil {
		ev, ok := <-w.ResultChan()
		w.Stop()
		if !ok || ev.Type != watch.Error {
			t.Fatalf("watch from an old resourceVersion got %v %v, want 410 Gone", ev.Type, ev.Object)
		}
		err = apierrors.FromObject(ev.Object)
	}
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from an old resourceVersion: %v, want 410 Gone", err)
	}
	// New states continue above the old history, and the old history is
	// still listed once, from the index.
	if rv := createEvent(t, cs, "after"); rv <= oldLast {
		t.Fatalf("new create at resourceVersion %d, not above the old history's %d", rv, oldLast)
	}
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 21 {
		t.Fatalf("list holds %d events, want the 20 old ones and the new one", len(list.Items))
	}
}
