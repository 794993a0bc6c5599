package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/freeport"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// localCounts returns, per shard and replica, the rows in table's local
// table of db, read on each server directly.
func localCounts(t *testing.T, env *chtest.ClusterEnv, db, table string) [][]uint64 {
	t.Helper()
	out := make([][]uint64, env.Shards())
	for s := range out {
		for r := 0; r < env.Replicas(); r++ {
			c, err := ch.Open(&ch.Options{Addr: []string{env.Node(s, r).Addr}})
			require.NoError(t, err)
			var n uint64
			err = c.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM `%s`.%s_local", db, table)).Scan(&n)
			c.Close()
			require.NoError(t, err)
			out[s] = append(out[s], n)
		}
	}
	return out
}

// TestClusterRetriedBatchIsStoredOnce: the writer retries a batch whose
// insert failed or whose outcome it did not learn, with the same rows in
// the same order. Through the Distributed table each shard receives the
// same block again, and its replicated table drops it as a duplicate, so
// the retry adds no rows, even when the first attempt reached only some
// shards (the insert of one shard's block alone stands for that).
func TestClusterRetriedBatchIsStoredOnce(t *testing.T) {
	s := storetest.Cluster(t, chstore.DefaultConfig())
	env := chtest.SharedCluster(t)
	ctx := context.Background()
	rows := chstore.FoldingRows(t, time.Now().UTC())
	require.NoError(t, s.Insert(ctx, rows))
	require.NoError(t, s.Insert(ctx, rows), "the same batch again")
	stored, _, err := s.DiskUsage(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rows), stored, "the retried batch adds no rows")

	counts := localCounts(t, env, s.Database(), "events")
	var sum uint64
	for _, shard := range counts {
		sum += shard[0]
		require.Positive(t, shard[0], "rows spread over every shard: %v", counts)
	}
	require.EqualValues(t, len(rows), sum, "the shards hold the batch once: %v", counts)

	// A batch that differs (a state fewer) is a new block: stored, and
	// folded by reads.
	require.NoError(t, s.Insert(ctx, rows[1:]))
	stored, _, err = s.DiskUsage(ctx)
	require.NoError(t, err)
	require.Greater(t, stored, uint64(len(rows)))
	n, err := s.CountLatest(ctx, chstore.LatestFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 5, n, "reads count each event once")
}

// TestClusterInsertQuorum: with --clickhouse.insert-quorum 2 an insert
// returns only once both replicas of every shard hold the rows, so each
// replica, read directly right after Insert, already has them.
func TestClusterInsertQuorum(t *testing.T) {
	cfg := chstore.DefaultConfig()
	cfg.InsertQuorum = 2
	s := storetest.Cluster(t, cfg)
	env := chtest.SharedCluster(t)
	rows := chstore.FoldingRows(t, time.Now().UTC())
	require.NoError(t, s.Insert(context.Background(), rows))
	counts := localCounts(t, env, s.Database(), "events")
	for r := 0; r < env.Replicas(); r++ {
		var sum uint64
		for _, shard := range counts {
			sum += shard[r]
		}
		require.EqualValues(t, len(rows), sum, "replica %d of every shard has the batch when Insert returns: %v", r+1, counts)
	}
}

// TestClusterBadInput: a configuration cluster mode cannot run with fails
// at Open, before any DDL, naming the flag and what to do.
func TestClusterBadInput(t *testing.T) {
	env := chtest.SharedCluster(t)
	ctx := context.Background()
	single := chtest.ForTest(t)

	// A server whose cluster's ZooKeeper is not there: a free port nothing
	// listens on.
	port, err := freeport.Ports(2)
	require.NoError(t, err)
	noZK, err := chserver.Start(ctx, chserver.Options{Dir: t.TempDir(), TCPPort: port[0], Cluster: &chserver.Member{
		Name: "eventpipe", Shards: [][]chserver.Addr{{{Host: "127.0.0.1", Port: port[0]}}}, Shard: "1", Replica: "r1",
		ZooKeeper: fmt.Sprintf("127.0.0.1:%d", port[1]),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = noZK.Stop() })

	// A server of a cluster with a working ZooKeeper whose user reads
	// from any replica.
	port, err = freeport.Ports(1)
	require.NoError(t, err)
	random, err := chserver.Start(ctx, chserver.Options{Dir: t.TempDir(), TCPPort: port[0], LoadBalancing: "random", Cluster: &chserver.Member{
		Name: "eventpipe", Shards: [][]chserver.Addr{{{Host: "127.0.0.1", Port: port[0]}}}, Shard: "9", Replica: "lb",
		ZooKeeper: env.ZooKeeper.Addr,
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = random.Stop() })

	clusterDB := storetest.Cluster(t, chstore.DefaultConfig()).Database()
	// A database made single-node on the cluster's first server, as one
	// being moved to cluster mode is.
	singleDB := storetest.DatabaseName(t)
	one := chstore.DefaultConfig()
	one.Addr, one.Database = env.Addr(), singleDB
	s, err := chstore.Open(ctx, one)
	require.NoError(t, err)
	_, err = s.Migrate(ctx)
	s.Close()
	require.NoError(t, err)

	for _, c := range []struct {
		name              string
		addr, cluster, db string
		want              []string
		// fresh: the database did not exist, and must not after the refusal.
		fresh bool
	}{
		{"unknown cluster", env.Addr(), "nope", "fresh_unknown", []string{"--clickhouse.cluster \"nope\"", "no such cluster", "it knows: eventpipe"}, true},
		{"cluster on a server without one", single.Addr, "eventpipe", "fresh_single", []string{"--clickhouse.cluster \"eventpipe\"", "no such cluster"}, true},
		{"ZooKeeper unreachable", noZK.Addr, "eventpipe", "fresh_nozk", []string{"--clickhouse.cluster \"eventpipe\"", "cannot reach ZooKeeper"}, true},
		{"load_balancing not in_order", random.Addr, "eventpipe", "fresh_lb", []string{"--clickhouse.cluster \"eventpipe\"", "has load_balancing=random", "load_balancing=in_order in that user's settings profile"}, true},
		{"single-node tables, cluster asked", env.Addr(), "eventpipe", singleDB, []string{"--clickhouse.cluster \"eventpipe\"", "single-node tables", "docs/clickhouse-cluster.md", "or start without --clickhouse.cluster"}, false},
		{"cluster tables, single node asked", env.Addr(), "", clusterDB, []string{"cluster-mode tables", "start with --clickhouse.cluster NAME"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := chstore.DefaultConfig()
			cfg.Addr, cfg.Cluster, cfg.Database = c.addr, c.cluster, c.db
			s, err := chstore.Open(ctx, cfg)
			if s != nil {
				s.Close()
			}
			require.Error(t, err, "Open must refuse")
			t.Log(err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
			if !c.fresh {
				require.ErrorIs(t, err, chstore.ErrSchemaMode)
			}
			if c.fresh {
				conn, err := ch.Open(&ch.Options{Addr: []string{c.addr}})
				require.NoError(t, err)
				defer conn.Close()
				var n uint64
				require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", c.db).Scan(&n))
				require.Zero(t, n, "nothing half-migrated")
			}
		})
	}

	// Flag validation.
	cfg := chstore.DefaultConfig()
	cfg.InsertQuorum = 2
	require.ErrorContains(t, joinErrs(cfg.Validate()), "--clickhouse.insert-quorum 2 needs --clickhouse.cluster")
	cfg.InsertQuorum = -1
	require.ErrorContains(t, joinErrs(cfg.Validate()), "--clickhouse.insert-quorum must be 0 or more")
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%v", errs)
}
