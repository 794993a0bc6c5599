// Package etcdfront_test runs a real kube-apiserver whose Events are stored
// in eventpipe through the etcd front (--etcd-servers-overrides=/events#…),
// with everything else in a real etcd.
package etcdfront_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// stack is eventpipe in dev mode with its etcd front, and a kube-apiserver
// that stores its Events there.
type stack struct {
	env     *devenv.Env
	cluster *kubetest.Cluster
	client  *kubernetes.Clientset
}

func start(t *testing.T, o kubetest.Options) *stack {
	t.Helper()
	eo := devtest.Options(t)
	eo.EtcdPort = 0
	env := devtest.Run(t, eo)
	o.ExtraArgs = append(o.ExtraArgs, "--etcd-servers-overrides=/events#"+env.EtcdEndpoint)
	c := kubetest.StartCluster(t, o)
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{env: env, cluster: c, client: cs}
}

// etcdEventKeys counts the keys under /registry/events/ in the cluster's
// real etcd.
func (s *stack) etcdEventKeys(t *testing.T) int64 {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.cluster.EtcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/registry/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// stored counts the events eventpipe's index holds in the front's scope,
// once the writer has committed everything up to now.
func (s *stack) stored(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	sc := devenv.EtcdScope
	n, err := s.env.Store.CountLatest(ctx, chstore.LatestFilter{Scope: &sc})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func event(ns, name, reason string) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-" + name, APIVersion: "v1"},
		Reason:         reason, Message: "message of " + name, Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
}

func TestKubeAPIServerStoresEventsInEventpipe(t *testing.T) {
	s := start(t, kubetest.Options{})
	ctx := context.Background()
	ev := s.client.CoreV1().Events("default")

	w, err := ev.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	created, err := ev.Create(ctx, event("default", "one", "Started"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := ev.Create(ctx, event("default", "one", "Started"), metav1.CreateOptions{}); err == nil {
		t.Fatal("second create of the same name succeeded; want AlreadyExists")
	}
	got, err := ev.Get(ctx, "one", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.ResourceVersion != created.ResourceVersion || got.Reason != "Started" {
		t.Fatalf("get: rv %s reason %s, want %s Started", got.ResourceVersion, got.Reason, created.ResourceVersion)
	}
	got.Count = 2
	updated, err := ev.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil || updated.Count != 2 || updated.ResourceVersion == created.ResourceVersion {
		t.Fatalf("update: %+v, %v; want count 2 at a new resourceVersion", updated, err)
	}
	got.Count = 3 // stale resourceVersion
	if _, err := ev.Update(ctx, got, metav1.UpdateOptions{}); err == nil {
		t.Fatal("update at a stale resourceVersion succeeded; want Conflict")
	}
	for i := range 5 {
		if _, err := ev.Create(ctx, event("default", fmt.Sprintf("e%d", i), "Pulled"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create e%d: %v", i, err)
		}
	}
	if _, err := s.client.EventsV1().Events("default").Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "new-api"}, EventTime: metav1.NowMicro(),
		ReportingController: "example.com/ctl", ReportingInstance: "ctl-1", Action: "Sync", Reason: "Synced", Type: "Normal",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create events.k8s.io/v1: %v", err)
	}
	list, err := ev.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Items) != 7 {
		t.Fatalf("list default: %d items, want 7", len(list.Items))
	}
	all, err := s.client.CoreV1().Events("").List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatalf("list all, limit 2: %v", err)
	}
	var paged []string
	for {
		for _, it := range all.Items {
			paged = append(paged, it.Namespace+"/"+it.Name)
		}
		if all.Continue == "" {
			break
		}
		if all, err = s.client.CoreV1().Events("").List(ctx, metav1.ListOptions{Limit: 2, Continue: all.Continue}); err != nil {
			t.Fatalf("list all, next page: %v", err)
		}
	}
	var whole []string
	for _, it := range list.Items {
		whole = append(whole, it.Namespace+"/"+it.Name)
	}
	if fmt.Sprint(paged) != fmt.Sprint(whole) {
		t.Fatalf("paged list of all namespaces:\n%v\nwant the unpaged list:\n%v", paged, whole)
	}
	if err := ev.Delete(ctx, "e0", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// The watch sees every change, in order.
	want := []watch.EventType{watch.Added, watch.Modified, watch.Added, watch.Added, watch.Added, watch.Added, watch.Added, watch.Added, watch.Deleted}
	for i, typ := range want {
		select {
		case e := <-w.ResultChan():
			if e.Type != typ {
				t.Fatalf("watch event %d: %s %v, want %s", i, e.Type, e.Object, typ)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("watch event %d (%s) did not come", i, typ)
		}
	}
	if n := s.etcdEventKeys(t); n != 0 {
		t.Fatalf("etcd holds %d keys under /registry/events/, want 0", n)
	}

	// A restarted kube-apiserver lists its Events from eventpipe.
	before, err := ev.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.cluster.RestartAPIServer()
	cs, err := kubernetes.NewForConfig(s.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	after, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list after kube-apiserver's restart: %v", err)
	}
	key := func(l *corev1.EventList) (out []string) {
		for _, it := range l.Items {
			out = append(out, it.Name+"@"+it.ResourceVersion)
		}
		return out
	}
	if fmt.Sprint(key(after)) != fmt.Sprint(key(before)) {
		t.Fatalf("after kube-apiserver's restart: %v\nbefore: %v", key(after), key(before))
	}
}

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }
