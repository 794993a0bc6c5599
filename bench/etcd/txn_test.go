package etcdbench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/internal/devenv"
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
// as in BenchmarkCreateThroughKubeAPIServer). On eventpipe it then times
// the index read the front makes for every create of a new name (the
// ClickHouse Get of internal/store/clickhouse) on its own, with the same
// number of workers. Use -benchtime 1x.
func BenchmarkTxnDirect(b *testing.B) {
	for _, st := range splitList(*storesFlag) {
		b.Run("store="+st, func(b *testing.B) { benchTxn(b, st) })
	}
}

func benchTxn(b *testing.B, store string) {
	ctx := context.Background()
	var endpoint string
	var env *devenv.Env
	switch store {
	case storeEtcd:
		endpoint = kubetest.StartCluster(b, kubetest.Options{}).EtcdURL
	case storeEventpipe, storeEventpipeSyncAlways:
		env = startEventpipe(b, store)
		endpoint = env.EtcdEndpoint
	default:
		b.Fatalf("-etcdbench.stores: unknown store %q", store)
	}
	clients := make([]*clientv3.Client, *txnWorkers)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	// As kube-apiserver: one lease of the event TTL for the events of the
	// next minute.
	lease, err := clients[0].Grant(ctx, 3660)
	if err != nil {
		b.Fatal(err)
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), load.ContentProtobuf)
	if !ok {
		b.Fatal("no protobuf serializer")
	}
	enc := scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	f := load.NewEventFactory()
	run := func(total int) (load.Latencies, time.Duration, int64) {
		var claimed, errs atomic.Int64
		var mu sync.Mutex
		var all load.Latencies
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var lat load.Latencies
				var buf bytes.Buffer
				for claimed.Add(1) <= int64(total) {
					ev, _ := f.Next()
					ev.UID = types.UID(fmt.Sprintf("%016x-uid", f.Nonce))
					ev.CreationTimestamp = ev.FirstTimestamp
					buf.Reset()
					if err := enc.Encode(ev, &buf); err != nil {
						b.Error(err)
						return
					}
					key := "/registry/events/" + ev.Namespace + "/" + ev.Name
					t := time.Now()
					resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
						Then(clientv3.OpPut(key, buf.String(), clientv3.WithLease(lease.ID))).
						Else(clientv3.OpGet(key)).Commit()
					lat = append(lat, time.Since(t))
					if err != nil || !resp.Succeeded {
						if errs.Add(1) == 1 {
							b.Logf("WARNING: create %s: succeeded=%v, %v", key, err == nil && resp.Succeeded, err)
						}
					}
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return all, time.Since(start), errs.Load()
	}
	run(*txnCount)
	lat, elapsed, errs := run(*txnCount)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(*txnCount)/elapsed.Seconds(), "txns/s")
	b.ReportMetric(load.MS(lat.Pct(0.5)), "txn-p50-ms")
	b.ReportMetric(load.MS(lat.Pct(0.99)), "txn-p99-ms")
	b.ReportMetric(float64(errs), "errors")
	if env == nil {
		return
	}

	// The front's index read for a new name, alone.
	sc := devenv.EtcdScope
	var claimed atomic.Int64
	var mu sync.Mutex
	var glat load.Latencies
	var wg sync.WaitGroup
	start := time.Now()
	for range *txnWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat load.Latencies
			for claimed.Add(1) <= int64(*txnCount) {
				ev, _ := f.Next()
				t := time.Now()
				if _, err := env.Store.Get(ctx, &sc, ev.Namespace, ev.Name); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			glat = append(glat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	gelapsed := time.Since(start)
	b.ReportMetric(float64(*txnCount)/gelapsed.Seconds(), "index-gets/s")
	b.ReportMetric(load.MS(glat.Pct(0.5)), "index-get-p50-ms")
	b.ReportMetric(load.MS(glat.Pct(0.99)), "index-get-p99-ms")
}
