package chserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// TestClusterReplicatesAndShards checks the harness's layout end to end:
// DDL ON CLUSTER reaches every server, a replicated table's rows reach the
// partner replica, and a Distributed table sees both shards.
func TestClusterReplicatesAndShards(t *testing.T) {
	env := chtest.SharedCluster(t)
	ctx := context.Background()
	conn := func(addr string) ch.Conn {
		c, err := ch.Open(&ch.Options{Addr: []string{addr}})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := conn(env.Addr())
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS harness ON CLUSTER eventpipe",
		"CREATE TABLE IF NOT EXISTS harness.t_local ON CLUSTER eventpipe (k UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/harness/t_local', '{replica}') ORDER BY k",
		"CREATE TABLE IF NOT EXISTS harness.t ON CLUSTER eventpipe AS harness.t_local ENGINE = Distributed(eventpipe, harness, t_local, k)",
	} {
		require.NoError(t, c.Exec(ctx, q), q)
	}
	b, err := c.PrepareBatch(ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1})), "INSERT INTO harness.t (k)")
	require.NoError(t, err)
	for k := uint64(0); k < 100; k++ {
		require.NoError(t, b.Append(k))
	}
	require.NoError(t, b.Send())

	var total uint64
	require.NoError(t, c.QueryRow(ctx, "SELECT count() FROM harness.t").Scan(&total))
	require.EqualValues(t, 100, total, "the Distributed table sees every shard")
	for s := 0; s < env.Shards(); s++ {
		// The first replica took the insert; the others fetch it.
		replicas := make([]ch.Conn, env.Replicas())
		for r := range replicas {
			replicas[r] = conn(env.Node(s, r).Addr)
		}
		count := func(r int) uint64 {
			var n uint64
			require.NoError(t, replicas[r].QueryRow(ctx, "SELECT count() FROM harness.t_local").Scan(&n))
			return n
		}
		first := count(0)
		require.Positive(t, first, fmt.Sprintf("shard %d holds rows", s+1))
		for r := 1; r < env.Replicas(); r++ {
			testenv.WaitFor(t, fmt.Sprintf("replica %d of shard %d agrees with replica 1", r+1, s+1), 30*time.Second, func() (bool, string) {
				n := count(r)
				return n == first, fmt.Sprintf("%d rows against %d", n, first)
			})
		}
	}
}
