package writerbench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/bench/internal/procstat"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/writer"
)

// BenchmarkWriterCluster drains a backlog of b.N realistic event states
// from JetStream into ClickHouse with the writer's default configuration,
// side by side: into one clickhouse-server, into a 2 shards × 2 replicas
// cluster through its Distributed table (synchronous inserts), and into the
// cluster with --clickhouse.insert-quorum 2. All of it (JetStream, writer,
// four servers, ZooKeeper) shares the machine's cores, so the cluster's
// figure is the cost of cluster mode on one machine, not a cluster's
// capacity. ch-cpu-µs/event is the CPU of every clickhouse-server (and
// ZooKeeper) per state.
func BenchmarkWriterCluster(b *testing.B) {
	for _, v := range []struct {
		name    string
		cluster bool
		quorum  int
	}{{"single", false, 0}, {"cluster", true, 0}, {"cluster-quorum2", true, 2}} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			var store *chstore.Store
			var pids []int
			if v.cluster {
				cfg := chstore.DefaultConfig()
				cfg.InsertQuorum = v.quorum
				store = storetest.Cluster(b, cfg)
				env := chtest.SharedCluster(b)
				for s := 0; s < env.Shards(); s++ {
					for r := 0; r < env.Replicas(); r++ {
						pids = append(pids, env.Node(s, r).PID())
					}
				}
				pids = append(pids, env.ZooKeeper.PID())
			} else {
				srv := chtest.ForTest(b)
				store = storetest.Migrated(b, srv)
				pids = []int{srv.PID()}
			}
			ns := natstest.ForTest(b)
			if err := eventlog.Ensure(ctx, ns.JS, eventlog.DefaultConfig()); err != nil {
				b.Fatal(err)
			}
			e := &env{store: store, js: ns.JS, url: ns.ClientURL()}
			c, err := buildCorpus(b.N)
			if err != nil {
				b.Fatal(err)
			}
			last, err := e.publish(ctx, c.msgs, c.ids)
			if err != nil {
				b.Fatal(err)
			}
			c.msgs, c.ids = nil, nil
			runtime.GC()

			cpu := func() time.Duration {
				var sum time.Duration
				for _, pid := range pids {
					d, err := procstat.ProcessCPU(pid)
					if err != nil {
						b.Fatal(err)
					}
					sum += d
				}
				return sum
			}
			w := writer.New(e.js, store, writer.DefaultConfig(), eventlog.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			cpu0, start := cpu(), time.Now()
			b.ResetTimer()
			go func() { done <- w.Run(runCtx) }()
			err = waitFor(ctx, w, last)
			elapsed := time.Since(start)
			b.StopTimer()
			chCPU := cpu() - cpu0
			cancel()
			if runErr := <-done; runErr != nil && err == nil {
				err = fmt.Errorf("run writer: %w", runErr)
			}
			if err != nil {
				b.Fatal(err)
			}
			n, err := store.CountLatest(ctx, chstore.LatestFilter{})
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				b.Fatal("nothing stored")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(perEvent(chCPU, float64(b.N)), "ch-cpu-µs/event")
		})
	}
}
