package chserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
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
		var counts []uint64
		for r := 0; r < env.Replicas(); r++ {
			rc := conn(env.Node(s, r).Addr)
			var n uint64
			deadline := time.Now().Add(30 * time.Second)
			for {
				require.NoError(t, rc.QueryRow(ctx, "SELECT count() FROM harness.t_local").Scan(&n))
				if r == 0 || n == counts[0] || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			counts = append(counts, n)
		}
		require.Positive(t, counts[0], fmt.Sprintf("shard %d holds rows", s+1))
		for _, n := range counts[1:] {
			require.Equal(t, counts[0], n, "replicas of shard %d agree", s+1)
		}
	}
}
