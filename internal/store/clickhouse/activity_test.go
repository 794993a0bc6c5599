package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// activityRows are the rows both halves of the version matrix run the
// activity queries on: a, updated twice (latest wins), b in another
// namespace, c in another tenant, and an exact re-insert of b.
func activityRows(now time.Time) []chstore.ActivityRow {
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	row := func(sc scope.Scope, ns, name string, seq uint64, ago time.Duration, kind, summary string) chstore.ActivityRow {
		ts := now.Add(-ago)
		return chstore.ActivityRow{ScopeType: sc.Type, ScopeName: sc.Name, Namespace: ns, Name: name, Seq: seq, SourceSeq: seq * 10,
			LastTime: ts.Truncate(time.Second), LastNanos: uint32(ts.Nanosecond()), ResourceKind: kind, ResourceName: name + "-obj",
			ActorName: "kubelet", Reason: "X", Type: "Normal", Summary: summary, Body: []byte(`{"metadata":{"name":"` + name + `"}}`)}
	}
	return []chstore.ActivityRow{
		row(alpha, "prod", "a", 1, 3*time.Minute, "Pod", "a1"),
		row(alpha, "dev", "b", 2, 2*time.Minute, "Deployment", "b1"),
		row(beta, "prod", "c", 3, time.Minute, "Pod", "c1"),
		row(alpha, "prod", "a", 4, 30*time.Second, "Pod", "a2"),
		row(alpha, "prod", "a", 5, 10*time.Second, "Pod", "a3"),
		row(alpha, "dev", "b", 2, 2*time.Minute, "Deployment", "b1"),
	}
}

func summaries(rows []chstore.ActivityRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Summary)
	}
	return out
}

func TestActivities(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, s.InsertActivities(ctx, activityRows(now)))
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	list := func(q chstore.ActivityQuery) []string {
		rows, err := s.ListActivities(ctx, q)
		require.NoError(t, err)
		return summaries(rows)
	}
	require.Equal(t, []string{"a3", "c1", "b1"}, list(chstore.ActivityQuery{}), "latest state per activity, newest first, duplicates folded")
	require.Equal(t, []string{"a3", "b1"}, list(chstore.ActivityQuery{Scope: &alpha}))
	require.Equal(t, []string{"a2", "b1"}, list(chstore.ActivityQuery{Scope: &alpha, AtSeq: 4}), "as of seq 4")
	require.Equal(t, []string{"b1"}, list(chstore.ActivityQuery{Conds: []chstore.FieldCond{{Field: "spec.resource.kind", Value: "Deployment"}}}))
	require.Equal(t, []string{"a3", "c1"}, list(chstore.ActivityQuery{Conds: []chstore.FieldCond{{Field: "spec.resource.kind", Not: true, Value: "Deployment"}}}))
	require.Equal(t, []string{"a3"}, list(chstore.ActivityQuery{Since: now.Add(-45 * time.Second)}), "windowed")
	// Paging with the cursor of the previous page's last row.
	first, err := s.ListActivities(ctx, chstore.ActivityQuery{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"a3", "c1"}, summaries(first))
	last := first[1]
	require.Equal(t, []string{"b1"}, list(chstore.ActivityQuery{Limit: 2, After: &chstore.ActivityCursor{LastTime: last.LastTime, LastNanos: last.LastNanos,
		Namespace: last.Namespace, Name: last.Name, Scope: scope.Scope{Type: last.ScopeType, Name: last.ScopeName}}}))
	_, err = s.ListActivities(ctx, chstore.ActivityQuery{Conds: []chstore.FieldCond{{Field: "spec.summary", Value: "x"}}})
	require.ErrorContains(t, err, "cannot be filtered")
}
