package chcluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// moveStatements are the SQL steps of docs/clickhouse-cluster.md, "Moving
// a single-node installation to cluster mode", for database db on the
// server that holds it: step 2 before `eventpipe migrate
// --clickhouse.cluster`, step 4 after it, step 6 at the end.
func moveStatements(db string) (rename, copy, drop []string) {
	tables := []string{"events", "activities", "audit_records"}
	for _, t := range tables {
		rename = append(rename, fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s_single", db, t, db, t))
		copy = append(copy, fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM %s.%s_single", db, t, db, t))
		drop = append(drop, fmt.Sprintf("DROP TABLE %s.%s_single", db, t))
	}
	return rename, copy, drop
}

// answers is what the store answers about the data the move must keep.
type answers struct {
	events     []string
	history    int
	activities []string
	audit      []string
}

func read(t *testing.T, s *chstore.Store, now time.Time) answers {
	t.Helper()
	ctx := context.Background()
	var a answers
	recs, err := s.Latest(ctx, chstore.LatestFilter{Scope: &tenant})
	require.NoError(t, err)
	for _, r := range recs {
		a.events = append(a.events, fmt.Sprintf("%s/%s@%d", r.Event.Namespace, r.Event.Name, r.Seq))
	}
	hist, err := s.QueryHistory(ctx, chstore.HistoryQuery{HistoryFilter: chstore.HistoryFilter{Scope: &tenant,
		Start: now.Add(-24 * time.Hour), End: now.Add(time.Hour), AtSeq: 1 << 40}, Limit: 1000}, chstore.Limits{})
	require.NoError(t, err)
	a.history = len(hist)
	acts, err := s.ListActivities(ctx, chstore.ActivityQuery{Scope: &tenant})
	require.NoError(t, err)
	for _, r := range acts {
		a.activities = append(a.activities, fmt.Sprintf("%s/%s@%d", r.Namespace, r.Name, r.Seq))
	}
	aud, err := s.QueryAudit(ctx, chstore.AuditQuery{Scope: &tenant, Start: now.Add(-24 * time.Hour), End: now.Add(time.Hour), AtSeq: 1 << 40, Limit: 1000}, chstore.Limits{})
	require.NoError(t, err)
	for _, r := range aud {
		a.audit = append(a.audit, r.AuditID+"/"+r.Stage)
	}
	return a
}

// TestMoveSingleNodeToCluster follows the documented procedure on a
// single-node database living on one of the cluster's servers: the
// cluster-mode store then answers exactly as the single-node one did.
func TestMoveSingleNodeToCluster(t *testing.T) {
	env := chtest.SharedCluster(t)
	ctx := context.Background()
	db := storetest.DatabaseName(t)
	now := time.Now().UTC().Truncate(time.Second)

	// A single-node installation with events (several states, a delete),
	// activities and audit records.
	single := chstore.DefaultConfig()
	single.Addr, single.Database = env.Node(0, 0).Addr, db
	s, err := chstore.Open(ctx, single)
	require.NoError(t, err)
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	var rows []chstore.Row
	seq := uint64(0)
	for i := range 200 {
		for c := 1; c <= 1+i%3; c++ {
			seq++
			ev := event(i, c, now.Add(-time.Hour))
			op := eventlog.OpCreate
			if c > 1 {
				op = eventlog.OpUpdate
			}
			if i%17 == 0 && c == 1+i%3 {
				op = eventlog.OpDelete
			}
			row, err := chstore.EncodeRow(&eventlog.Record{Key: eventlog.Key{Scope: tenant, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: seq}, now)
			require.NoError(t, err)
			rows = append(rows, row)
		}
	}
	require.NoError(t, s.Insert(ctx, rows))
	var acts []chstore.ActivityRow
	var audit []chstore.AuditRow
	for i := range 50 {
		acts = append(acts, chstore.ActivityRow{ScopeType: tenant.Type, ScopeName: tenant.Name, Namespace: "prod", Name: fmt.Sprintf("act-%d", i),
			Seq: uint64(i + 1), SourceSeq: uint64(i + 1), LastTime: now.Add(-time.Duration(i) * time.Minute), ResourceKind: "Pod", ResourceName: fmt.Sprintf("web-%d", i),
			Reason: "BackOff", Type: "Warning", Summary: "web restarted", Body: []byte(`{}`)})
		audit = append(audit, chstore.AuditRow{ScopeType: tenant.Type, ScopeName: tenant.Name, AuditID: fmt.Sprintf("a%02d", i), Stage: "ResponseComplete",
			Seq: uint64(i + 1), RequestTime: now.Add(-time.Duration(i) * time.Minute), StageTime: now.Add(-time.Duration(i) * time.Minute),
			Level: "Metadata", Verb: "create", User: "alice", UserGroups: []string{"system:authenticated"}, Resource: "pods", Namespace: "prod", Name: "p", Code: 201, Body: []byte(`{}`)})
	}
	require.NoError(t, s.InsertActivities(ctx, acts))
	require.NoError(t, s.InsertAudit(ctx, audit))
	before := read(t, s, now)
	require.Len(t, before.events, 200-12, "the deleted events (every 17th) are not listed")
	require.Equal(t, 200-12, before.history)
	require.Len(t, before.activities, 50)
	require.Len(t, before.audit, 50)
	s.Close()

	// 1. The eventpipe roles are stopped (JetStream keeps what arrives).
	// 2. The single-node tables are renamed out of the way.
	rename, copyRows, drop := moveStatements("`" + db + "`")
	conn, err := ch.Open(&ch.Options{Addr: []string{env.Node(0, 0).Addr}})
	require.NoError(t, err)
	defer conn.Close()
	for _, q := range rename {
		require.NoError(t, conn.Exec(ctx, q), q)
	}
	// 3. eventpipe migrate --clickhouse.cluster NAME.
	cluster := chstore.DefaultConfig()
	cluster.Addr, cluster.Database, cluster.Cluster = env.Node(0, 0).Addr, db, env.Name
	cs, err := chstore.Open(ctx, cluster)
	require.NoError(t, err)
	defer cs.Close()
	_, err = cs.Migrate(ctx)
	require.NoError(t, err)
	// 4. The rows are copied through the Distributed tables, which shard
	// them; synchronously, so the copy is complete when it returns.
	syncCtx := ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1}))
	for _, q := range copyRows {
		require.NoError(t, conn.Exec(syncCtx, q), q)
	}
	// 5. The counts agree.
	for _, tbl := range []string{"events", "activities", "audit_records"} {
		var a, b uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.%s_single", db, tbl)).Scan(&a))
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.%s", db, tbl)).Scan(&b))
		require.Equal(t, a, b, "%s: every row copied", tbl)
	}
	// The roles start again with --clickhouse.cluster: the same answers,
	// also through another shard's server.
	require.Equal(t, before, read(t, cs, now))
	other := cluster
	other.Addr = env.Node(1, 1).Addr
	far, err := chstore.Open(ctx, other)
	require.NoError(t, err)
	defer far.Close()
	require.Equal(t, before, read(t, far, now))
	// 6. The old tables are dropped.
	for _, q := range drop {
		require.NoError(t, conn.Exec(ctx, q), q)
	}
	require.Equal(t, before, read(t, far, now))
}
