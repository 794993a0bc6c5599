package etcdbench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

var (
	txnWorkers = flag.Int("etcdbench.txn-workers", 32, "BenchmarkTxnDirect: concurrent clients, each with its own connection")
	txnCount   = flag.Int("etcdbench.txns", 1000, "BenchmarkTxnDirect: creates measured per store (after as many again, not measured, as a warm-up)")
)

// BenchmarkTxnDirect is the storage half of BenchmarkCreateThroughKubeAPIServer
// alone: the transaction kube-apiserver sends for an event create (if
// mod_revision(key) == 0 then put(key, value, lease) else get(key)), with
// the value kube-apiserver stores (the Event in protobuf), sent by
// -etcdbench.txn-workers clientv3 clients straight to etcd (store=etcd)
// and to the etcd front (store=eventpipe and store=eventpipe-sync-always,
// as in BenchmarkCreateThroughKubeAPIServer), through the load runner of
// the API benchmarks (bench/internal/load). Use -benchtime 1x.
func BenchmarkTxnDirect(b *testing.B) {
	for _, st := range splitList(*storesFlag) {
		b.Run("store="+st, func(b *testing.B) { benchTxn(b, st) })
	}
}

// txnCreator creates an event as kube-apiserver's etcd3 storage does, with
// its own client.
type txnCreator struct {
	c     *clientv3.Client
	enc   runtime.Encoder
	lease clientv3.LeaseID
}

func (t txnCreator) Create(ctx context.Context, ev *corev1.Event) error {
	// kube-apiserver stores the object it created: with a uid and a
	// creation time, without a resourceVersion.
	ev.UID = types.UID(ev.Namespace + "/" + ev.Name)
	ev.CreationTimestamp = ev.FirstTimestamp
	var buf bytes.Buffer
	if err := t.enc.Encode(ev, &buf); err != nil {
		return err
	}
	key := "/registry/events/" + ev.Namespace + "/" + ev.Name
	resp, err := t.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, buf.String(), clientv3.WithLease(t.lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("create %s: the key exists", key)
	}
	return err
}

func benchTxn(b *testing.B, store string) {
	ctx := context.Background()
	var endpoint string
	switch store {
	case storeEtcd:
		endpoint = kubetest.StartCluster(b, kubetest.Options{}).EtcdURL
	case storeEventpipe, storeEventpipeSyncAlways:
		endpoint = startEventpipe(b, store).EtcdEndpoint
	default:
		b.Fatalf("-etcdbench.stores: unknown store %q", store)
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), load.ContentProtobuf)
	if !ok {
		b.Fatal("no protobuf serializer")
	}
	enc := scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	creators := make([]load.Creator, *txnWorkers)
	var lease clientv3.LeaseID
	for i := range creators {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if i == 0 {
			// As kube-apiserver: one lease of the event TTL for the
			// events of the next minute.
			l, err := c.Grant(ctx, 3660)
			if err != nil {
				b.Fatal(err)
			}
			lease = l.ID
		}
		creators[i] = txnCreator{c: c, enc: enc, lease: lease}
	}
	f := load.NewEventFactory()
	load.Run(ctx, creators, f, time.Time{}, int64(*txnCount)) // warm-up
	r := load.Run(ctx, creators, f, time.Time{}, int64(*txnCount))
	if r.FirstErr != nil {
		b.Logf("WARNING: %d of %d creates failed; the first: %v", r.Errs.Load(), *txnCount, r.FirstErr)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(*txnCount)/r.Elapsed.Seconds(), "txns/s")
	b.ReportMetric(load.MS(r.Lat.Pct(0.5)), "txn-p50-ms")
	b.ReportMetric(load.MS(r.Lat.Pct(0.99)), "txn-p99-ms")
	b.ReportMetric(float64(r.Errs.Load()), "errors")
}
