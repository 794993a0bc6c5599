package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/retention"
	"github.com/eventpipe/eventpipe/internal/tiers/tierstest"
)

var (
	alpha = tierstest.Alpha
	beta  = tierstest.Beta
	gamma = scope.Scope{Type: scope.TypeOrganization, Name: "gamma"}
	// now has a sub-second part, so every line falls inside a second.
	now = time.Date(2026, 11, 25, 12, 0, 0, 500_000_000, time.UTC)
)

func row(sc scope.Scope, name string, seq uint64, at time.Time) chstore.Row {
	at = at.UTC()
	return chstore.Row{ScopeType: sc.Type, ScopeName: sc.Name, Namespace: "ns", Name: name, UID: "uid-" + name,
		Seq: seq, Op: 1, LastTime: at.Truncate(time.Second), LastNanos: uint32(at.Nanosecond()),
		Reason: "BackOff", Message: "m", Type: "Warning", Count: int32(seq)}
}

// auditRow is the audit record of the same tenant and time as row(sc,
// name, seq, at): its request was received at the event's observation.
func auditRow(sc scope.Scope, name string, seq uint64, at time.Time) chstore.AuditRow {
	at = at.UTC()
	return chstore.AuditRow{ScopeType: sc.Type, ScopeName: sc.Name, AuditID: name, Stage: "ResponseComplete", Seq: seq,
		RequestTime: at.Truncate(time.Second), RequestNanos: uint32(at.Nanosecond()), StageTime: at.Truncate(time.Second),
		Verb: "create", User: "alice", Resource: "configmaps", Namespace: "ns", Name: name, Code: 201}
}

// storedAudit lists auditID@seq of every audit record row, sorted.
func storedAudit(t *testing.T, s *chstore.Store) []string {
	t.Helper()
	rows, err := s.Conn().Query(context.Background(), "SELECT audit_id, seq FROM "+s.Database()+".audit_records")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		var seq uint64
		require.NoError(t, rows.Scan(&n, &seq))
		out = append(out, fmt.Sprintf("%s@%d", n, seq))
	}
	sort.Strings(out)
	return out
}

// stored lists name@seq of every row, sorted.
func stored(t *testing.T, s *chstore.Store) []string {
	t.Helper()
	rows, err := s.Conn().Query(context.Background(), "SELECT name, seq FROM "+s.Database()+".events")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		var seq uint64
		require.NoError(t, rows.Scan(&n, &seq))
		out = append(out, fmt.Sprintf("%s@%d", n, seq))
	}
	sort.Strings(out)
	return out
}

// TestRetentionDeletesExactlyPastTheLine: per tenant and tier, rows last
// observed before now − retention go, to the nanosecond, and nothing else;
// whole days past the longest retention are dropped as partitions; a
// recurring event keeps its latest state; the dry run removes nothing and
// says what it would remove.
func TestRetentionDeletesExactlyPastTheLine(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	cfg := tierstest.Config(t, "tenants:\n  Project/alpha: Free\n  Project/beta: Pro\n  Organization/gamma: Enterprise\n")
	res := tiers.NewResolver(cfg)
	day := 24 * time.Hour
	rows := []chstore.Row{
		row(alpha, "a-old", 1, now.Add(-25*time.Hour)),
		row(alpha, "a-before", 2, now.Add(-day-time.Nanosecond)), // 1 ns past the line
		row(alpha, "a-on", 3, now.Add(-day)),                     // on the line: kept
		row(alpha, "a-after", 4, now.Add(-day+time.Second)),
		row(alpha, "a-rec", 5, now.Add(-48*time.Hour)), // a recurring event's old state …
		row(alpha, "a-rec", 6, now.Add(-time.Hour)),    // … and its latest
		row(beta, "b-keep", 7, now.Add(-59*day)),
		row(beta, "b-old", 8, now.Add(-61*day)),
		row(gamma, "g-keep", 9, now.Add(-89*day)),
		row(gamma, "g-old", 10, now.Add(-90*day-time.Hour)), // past the global line, in a day that stays
		row(gamma, "g-edge", 11, now.Add(-90*day+time.Hour)),
		row(scope.Platform, "p-old", 12, now.Add(-90*day-2*time.Hour)),
		row(scope.Platform, "p-keep", 13, now.Add(-time.Hour)),
		// A whole day past every retention: dropped as a partition.
		row(alpha, "x1", 14, now.Add(-97*day)),
		row(beta, "x2", 15, now.Add(-97*day+time.Hour)),
		row(scope.Platform, "x3", 16, now.Add(-97*day+2*time.Hour)),
	}
	require.NoError(t, s.Insert(ctx, rows))
	all := stored(t, s)
	require.Len(t, all, len(rows))
	// The audit log keeps the same tiers' retention, on each record's
	// request time: one audit record per event row, at the same time.
	var audit []chstore.AuditRow
	for _, r := range rows {
		audit = append(audit, auditRow(scope.Scope{Type: r.ScopeType, Name: r.ScopeName}, r.Name, r.Seq, r.LastTime.Add(time.Duration(r.LastNanos))))
	}
	require.NoError(t, s.InsertAudit(ctx, audit))
	allAudit := storedAudit(t, s)
	require.Equal(t, all, allAudit, "the same names and sequences")
	// both checks that a report says the same for both tables, and
	// returns the events table's.
	both := func(rep retention.Report) retention.TableReport {
		t.Helper()
		require.Len(t, rep.Tables, 2)
		require.Equal(t, rep.Tables["events"], rep.Tables["audit_records"])
		return rep.Tables["events"]
	}

	clk := clocktesting.NewFakeClock(now)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// Dry run: nothing removed, everything reported.
	dry := retention.New(s, res, retention.Config{DryRun: true}, clk, nil, log)
	rep, err := dry.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"20260820": 3}, both(rep).Partitions)
	require.Equal(t, map[scope.Scope]uint64{alpha: 4, beta: 2, gamma: 1, scope.Platform: 2}, both(rep).Deleted,
		"a dry run's per-tenant counts include rows in partitions it would drop")
	require.Equal(t, all, stored(t, s), "a dry run removes nothing")
	require.Equal(t, allAudit, storedAudit(t, s), "a dry run removes nothing")
	require.Contains(t, logs.String(), `msg="retention dry run: would delete rows" component=retention dryRun=true table=events scope=Project/alpha tier=Free retention=24h`)
	for _, table := range []string{"events", "audit_records"} {
		require.Contains(t, logs.String(), `msg="retention dry run: would drop partition" component=retention dryRun=true table=`+table+` partition=20260820 rows=3`)
	}

	reg := prometheus.NewPedanticRegistry()
	w := retention.New(s, res, retention.Config{MutationPoll: 20 * time.Millisecond}, clk, reg, log)
	rep, err = w.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"20260820": 3}, both(rep).Partitions)
	require.Equal(t, map[scope.Scope]uint64{alpha: 3, beta: 1, gamma: 1, scope.Platform: 1}, both(rep).Deleted)
	require.Equal(t, []string{"a-after@4", "a-on@3", "a-rec@6", "b-keep@7", "g-edge@11", "g-keep@9", "p-keep@13"}, stored(t, s))
	require.Equal(t, stored(t, s), storedAudit(t, s), "the same records are left")

	// The recurring event still reads in its latest state.
	got, err := s.Latest(ctx, chstore.LatestFilter{Scope: &alpha})
	require.NoError(t, err)
	require.Len(t, got, 3)
	for _, r := range got {
		if r.Event.Name == "a-rec" {
			require.EqualValues(t, 6, r.Seq)
		}
	}

	// Metrics.
	n, err := testutil.GatherAndCount(reg, "eventpipe_tiers_retention_partitions_dropped_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, testutil.GatherAndCompare(reg, bytes.NewBufferString(`
# HELP eventpipe_tiers_retention_rows_deleted_total Rows (event states, audit records) removed for retention, by how: partition (a whole day dropped) or delete (per-tenant mutation).
# TYPE eventpipe_tiers_retention_rows_deleted_total counter
eventpipe_tiers_retention_rows_deleted_total{how="delete"} 12
eventpipe_tiers_retention_rows_deleted_total{how="partition"} 6
# HELP eventpipe_tiers_retention_partitions_dropped_total Day partitions dropped because every row in them is past the longest retention.
# TYPE eventpipe_tiers_retention_partitions_dropped_total counter
eventpipe_tiers_retention_partitions_dropped_total 2
`), "eventpipe_tiers_retention_rows_deleted_total", "eventpipe_tiers_retention_partitions_dropped_total"))

	// Again at once: nothing left to do.
	rep, err = w.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, both(rep).Partitions)
	require.Empty(t, both(rep).Deleted)

	// One second later a-on is past the line; a tier change (alpha to Pro)
	// takes effect at the next run without a restart and keeps it instead.
	clk.Step(time.Second)
	res.Set(tierstest.Config(t, "tenants:\n  Project/alpha: Pro\n  Project/beta: Pro\n  Organization/gamma: Enterprise\n"))
	rep, err = w.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, both(rep).Deleted)
	res.Set(cfg)
	rep, err = w.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, map[scope.Scope]uint64{alpha: 1}, both(rep).Deleted)
	require.Equal(t, []string{"a-after@4", "a-rec@6", "b-keep@7", "g-edge@11", "g-keep@9", "p-keep@13"}, stored(t, s))
	require.Equal(t, stored(t, s), storedAudit(t, s))
}
