package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// usageRow builds a row directly (no Event) with a chosen observation time,
// sub-second part included, and a payload of varying size.
func usageRow(sc scope.Scope, name string, seq uint64, at time.Time, payload int) chstore.Row {
	at = at.UTC()
	return chstore.Row{
		ScopeType: sc.Type, ScopeName: sc.Name, Namespace: "ns", Name: name, UID: "uid-" + name,
		Seq: seq, Op: 1, LastTime: at.Truncate(time.Second), LastNanos: uint32(at.Nanosecond()),
		InvolvedKind: "Pod", InvolvedName: "web-" + name, Reason: "BackOff", Message: fmt.Sprintf("message %d", seq),
		Type: "Warning", SourceComponent: "kubelet", Count: 1, Rest: make([]byte, payload),
	}
}

// TestUsageAndRetentionSQL runs the quota and retention statements on the
// 18.16 server: sizes agree with RowBytes to the byte, cutoffs are exact to
// the nanosecond, a DELETE mutation removes exactly the rows past the line
// and changes the partition's mutation version, DROP PARTITION removes a day.
func TestUsageAndRetentionSQL(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()

	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeOrganization, Name: "beta"}
	day1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	line := day2.Add(500 * time.Millisecond) // alpha's retention line, inside a second

	rows := []chstore.Row{
		usageRow(alpha, "a1", 1, day1, 10),
		usageRow(beta, "b1", 2, day1.Add(time.Hour), 300),
		usageRow(alpha, "a2", 3, day2.Add(499*time.Millisecond), 20), // just before the line
		usageRow(alpha, "a3", 4, day2.Add(500*time.Millisecond), 30), // on the line: kept
		usageRow(alpha, "a4", 5, day2.Add(time.Second), 40),
		usageRow(beta, "b2", 6, day2, 50),
	}
	require.NoError(t, s.Insert(ctx, rows[:2]))
	require.NoError(t, s.Insert(ctx, rows[2:]))

	parts, err := s.Partitions(ctx)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	require.Equal(t, "20261120", parts[0].ID)
	require.EqualValues(t, 2, parts[0].Rows)
	require.Equal(t, day1.Add(time.Hour), parts[0].MaxTime)
	require.Equal(t, "20261121", parts[1].ID)
	require.EqualValues(t, 4, parts[1].Rows)
	require.Equal(t, day2.Add(time.Second), parts[1].MaxTime)
	require.Zero(t, parts[1].MutationVersion, "no mutation yet")

	want := map[scope.Scope]uint64{}
	for _, r := range rows[2:] {
		want[scope.Scope{Type: r.ScopeType, Name: r.ScopeName}] += uint64(chstore.RowBytes(&r))
	}
	got, maxSeq, err := s.PartitionUsage(ctx, "20261121", 0)
	require.NoError(t, err)
	require.EqualValues(t, 6, maxSeq)
	require.Len(t, got, 2)
	for _, u := range got {
		require.Equal(t, want[u.Scope], u.Bytes, "SQL and RowBytes agree for %s", u.Scope)
	}
	delta, maxSeq, err := s.PartitionUsage(ctx, "20261121", 5)
	require.NoError(t, err)
	require.EqualValues(t, 6, maxSeq)
	require.Equal(t, []chstore.ScopeUsage{{Scope: beta, Rows: 1, Bytes: uint64(chstore.RowBytes(&rows[5]))}}, delta)
	_, _, err = s.PartitionUsage(ctx, "2026112'", 0)
	require.ErrorContains(t, err, "not a day")

	oldest, err := s.OldestByScope(ctx, line)
	require.NoError(t, err)
	require.Equal(t, map[scope.Scope]time.Time{alpha: day1, beta: day1.Add(time.Hour)}, oldest)

	cutoffs := []chstore.Cutoff{{Scope: alpha, Before: line}, {Scope: beta, Before: day1.Add(time.Hour)}}
	counts, err := s.CountPastCutoffs(ctx, cutoffs)
	require.NoError(t, err)
	require.Equal(t, map[scope.Scope]uint64{alpha: 2}, counts, "a1 and a2; a3 is on the line; b1 is on its line")

	require.NoError(t, s.DeletePastCutoffs(ctx, cutoffs))
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.WaitMutations(wctx, 50*time.Millisecond))
	left := map[string]bool{}
	r, err := s.Conn().Query(ctx, "SELECT name FROM "+s.Database()+".events")
	require.NoError(t, err)
	for r.Next() {
		var n string
		require.NoError(t, r.Scan(&n))
		left[n] = true
	}
	r.Close()
	require.Equal(t, map[string]bool{"b1": true, "a3": true, "a4": true, "b2": true}, left)

	after, err := s.Partitions(ctx)
	require.NoError(t, err)
	require.NotZero(t, after[1].MutationVersion, "the mutation is visible in the partition")
	require.EqualValues(t, 3, after[1].Rows)

	require.NoError(t, s.DropPartition(ctx, "20261120"))
	after, err = s.Partitions(ctx)
	require.NoError(t, err)
	require.Len(t, after, 1)
	require.Equal(t, "20261121", after[0].ID)
	require.ErrorContains(t, s.DropPartition(ctx, "1; DROP"), "not a day")
}
