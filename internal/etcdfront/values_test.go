package etcdfront

import (
	"bytes"
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// TestValuesAreKubeAPIServerBytes takes the values a real kube-apiserver
// writes into a real etcd, in both storage media types, for core/v1 and
// events.k8s.io/v1 Events (series, micro-time, managed fields included),
// and checks that what the front stores of them (the log's record, then
// the index's row) encodes back to the same bytes.
func TestValuesAreKubeAPIServerBytes(t *testing.T) {
	for name, mediaType := range map[string]string{"protobuf": MediaTypeProtobuf, "json": MediaTypeJSON} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: []string{"--storage-media-type=" + mediaType}})
			cs, err := kubernetes.NewForConfig(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			now := metav1.Now()
			if _, err := cs.CoreV1().Events("default").Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "core", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"}},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", UID: "u1", APIVersion: "v1", FieldPath: "spec.containers{web}"},
				Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
				Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 7,
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "new"}, EventTime: metav1.NowMicro(),
				Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NowMicro()},
				ReportingController: "example.com/ctl", ReportingInstance: "ctl-1", Action: "Sync", Reason: "Synced", Type: "Normal",
				Regarding: corev1.ObjectReference{Kind: "Deployment", Namespace: "default", Name: "web"},
				Related:   &corev1.ObjectReference{Kind: "ReplicaSet", Namespace: "default", Name: "web-1"}, Note: "synced",
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.EtcdURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			resp, err := cli.Get(ctx, "/registry/events/default/", clientv3.WithPrefix())
			if err != nil {
				t.Fatalf("etcd: %v", err)
			}
			// Ours, and any kube-apiserver wrote of its own (it reports
			// repairing the kubernetes Service's ClusterIP in default):
			// those are its bytes too.
			keys := map[string]bool{}
			for _, kv := range resp.Kvs {
				keys[string(kv.Key)] = true
			}
			if !keys["/registry/events/default/core"] || !keys["/registry/events/default/new"] {
				t.Fatalf("etcd: want the keys of events core and new, got %v", keys)
			}
			cd, err := newCodec(mediaType)
			if err != nil {
				t.Fatal(err)
			}
			ks := newKeyspace("/registry")
			for _, kv := range resp.Kvs {
				ns, name, err := ks.event(kv.Key)
				if err != nil {
					t.Fatal(err)
				}
				ev, err := cd.decode(kv.Value, ns, name)
				if err != nil {
					t.Fatalf("%s: %v", kv.Key, err)
				}
				rec := &eventlog.Record{Key: eventlog.Key{Scope: testScope, Namespace: ns, Name: name}, Op: eventlog.OpCreate, Event: ev, Seq: 9}
				m, err := eventlog.EncodeMsg(rec)
				if err != nil {
					t.Fatal(err)
				}
				fromLog, err := eventlog.DecodeMsg(m.Subject, m.Header, m.Data, 9)
				if err != nil {
					t.Fatal(err)
				}
				row, err := chstore.EncodeRow(fromLog, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				fromIndex, err := chstore.DecodeRow(&row)
				if err != nil {
					t.Fatal(err)
				}
				for what, r := range map[string]*eventlog.Record{"log": fromLog, "index": fromIndex} {
					got, err := cd.encode(r.Event)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, kv.Value) {
						t.Errorf("%s from the %s: %d bytes differ from kube-apiserver's %d:\n%q\n%q", kv.Key, what, len(got), len(kv.Value), got, kv.Value)
					}
				}
			}
		})
	}
}
