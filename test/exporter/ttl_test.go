package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// TestExporterSourceTTL: the source cluster expires its events (here 4s
// after their last write, with kube-apiserver's lease reuse cut to 1s),
// and its watch reports each expiry as DELETED, like a delete. Keeping
// events past the source's TTL is eventpipe's purpose, so an expiry must
// not be exported as a delete, while a real delete still is.
func TestExporterSourceTTL(t *testing.T) {
	built := make(chan struct{})
	go func() { defer close(built); devtest.Binary(t) }()
	kube := kubetest.StartCluster(t, kubetest.Options{EventTTL: 4 * time.Second,
		ExtraArgs: []string{"--watch-cache=false", "--lease-reuse-duration-seconds=1"}})
	env := devtest.New(t).Env
	<-built
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	ctx := context.Background()
	s := &scenario{kube: kube, env: env, cs: cs, ns: "ttl", cluster: "ttl-cluster", sc: scope.Scope{Type: scope.TypeProject, Name: "ttl"}}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	p := startExporter(t, "exporter", s.args("--exporter.source-event-ttl", "4s")...)
	p.waitReady()

	event := func(name string) *corev1.Event {
		now := metav1.Now()
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: s.ns, Name: "web"}, Reason: "Pulled", Message: "pulled",
			Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1, Type: corev1.EventTypeNormal}
	}
	events := cs.CoreV1().Events(s.ns)
	kept, err := events.Create(ctx, event("kept"), metav1.CreateOptions{})
	require.NoError(t, err)
	gone, err := events.Create(ctx, event("gone"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, events.Delete(ctx, gone.Name, metav1.DeleteOptions{}))

	// The source drops "kept" by itself.
	require.Eventually(t, func() bool {
		_, err := events.Get(ctx, kept.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 60*time.Second, 200*time.Millisecond, "the source never expired its event")
	require.Eventually(t, func() bool {
		return p.metric(`eventpipe_exporter_events_seen_total{type="expired"}`) >= 1
	}, 30*time.Second, 200*time.Millisecond, "the exporter never saw the expiry")
	require.Equal(t, 1.0, p.mustMetric(`eventpipe_exporter_events_seen_total{type="deleted"}`), "the real delete is a delete")

	ops := map[string][]eventlog.Op{}
	require.Eventually(t, func() bool {
		ops = map[string][]eventlog.Op{}
		for _, r := range eventtest.States(t, env.JS, eventlog.FilterSubject(&s.sc, nil)) {
			ops[r.Event.Name] = append(ops[r.Event.Name], r.Op)
		}
		return len(ops["gone"]) == 2
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, []eventlog.Op{eventlog.OpCreate, eventlog.OpDelete}, ops["gone"])
	require.Equal(t, []eventlog.Op{eventlog.OpCreate}, ops["kept"], "the expiry is not exported as a delete")
}
