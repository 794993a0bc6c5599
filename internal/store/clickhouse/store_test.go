package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	s := storetest.Open(t, chtest.ForTest(t))
	ctx := context.Background()
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	require.Contains(t, applied, 1)
	again, err := s.Migrate(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second run applies nothing")
	if !s.Version().AtLeast(20, 1) {
		require.NotContains(t, applied, 2, "skip indexes are an extra of newer servers")
	}
}

func TestLatestFoldsStatesAndDuplicates(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()

	now := time.Now().UTC()
	rows := chstore.FoldingRows(t, now)
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	require.NoError(t, s.Insert(ctx, rows))
	require.NoError(t, s.Insert(ctx, rows[2:7]), "an exact re-insert (writer crash before ack)")

	got, err := s.Latest(ctx, chstore.LatestFilter{Scope: &alpha})
	require.NoError(t, err)
	require.Len(t, got, 4, "e0, e2, e3, e4: e1 is deleted, duplicates fold")
	require.Equal(t, "e0", got[0].Event.Name)
	require.EqualValues(t, 4, got[0].Event.Count, "latest state wins")
	require.Equal(t, "9", got[0].Event.ResourceVersion, "resourceVersion is the sequence")

	atSeq, err := s.Latest(ctx, chstore.LatestFilter{Scope: &alpha, AtSeq: 7})
	require.NoError(t, err)
	require.Len(t, atSeq, 5, "as of seq 7 the delete (seq 10) has not happened")
	require.EqualValues(t, 2, atSeq[0].Event.Count)

	n, err := s.CountLatest(ctx, chstore.LatestFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 5, n, "all scopes")
	n, err = s.CountLatest(ctx, chstore.LatestFilter{Scope: &beta})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = s.CountLatest(ctx, chstore.LatestFilter{Scope: &alpha, Since: now.Add(-30 * time.Minute)})
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "window excludes older events")

	stored, bytes, err := s.DiskUsage(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rows)+5, stored)
	require.Positive(t, bytes)
}

func TestListFiltersPagesAndGets(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	var rows []chstore.Row
	seq := uint64(0)
	add := func(op eventlog.Op, ev *corev1.Event) {
		seq++
		row, err := chstore.EncodeRow(&eventlog.Record{Key: eventlog.Key{Scope: alpha, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: seq}, now)
		require.NoError(t, err)
		rows = append(rows, row)
	}
	for i := range 10 {
		ev := eventtest.BackOff([]string{"a", "b"}[i%2], fmt.Sprintf("e%02d", i), 1, now.Add(-time.Minute))
		if i%3 == 0 {
			ev.Type, ev.Reason = corev1.EventTypeNormal, "Pulled"
		}
		add(eventlog.OpCreate, ev)
	}
	// e00 changes reason in its latest state: filters see only that state.
	ev := eventtest.BackOff("a", "e00", 2, now)
	ev.Reason = "BackOff"
	add(eventlog.OpUpdate, ev)
	require.NoError(t, s.Insert(ctx, rows))

	names := func(recs []*eventlog.Record) (out []string) {
		for _, r := range recs {
			out = append(out, r.Event.Namespace+"/"+r.Event.Name)
		}
		return out
	}
	got, err := s.List(ctx, chstore.ListQuery{Conds: []chstore.FieldCond{{Field: "reason", Value: "Pulled"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a/e06", "b/e03", "b/e09"}, names(got), "e00's latest reason is BackOff")
	got, err = s.List(ctx, chstore.ListQuery{Conds: []chstore.FieldCond{{Field: "type", Not: true, Value: "Warning"}, {Field: "metadata.namespace", Value: "b"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"b/e03", "b/e09"}, names(got))
	_, err = s.List(ctx, chstore.ListQuery{Conds: []chstore.FieldCond{{Field: "message; DROP TABLE x", Value: "v"}}})
	require.ErrorContains(t, err, "cannot be filtered")

	// Pages of 3 with a cursor cover everything once, in key order.
	var all []string
	var after *chstore.Cursor
	for {
		page, err := s.List(ctx, chstore.ListQuery{LatestFilter: chstore.LatestFilter{Scope: &alpha}, After: after, Limit: 3})
		require.NoError(t, err)
		all = append(all, names(page)...)
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1]
		after = &chstore.Cursor{Namespace: last.Event.Namespace, Name: last.Event.Name, Scope: last.Key.Scope}
	}
	require.Equal(t, []string{"a/e00", "a/e02", "a/e04", "a/e06", "a/e08", "b/e01", "b/e03", "b/e05", "b/e07", "b/e09"}, all)

	rec, err := s.Get(ctx, nil, "a", "e00")
	require.NoError(t, err)
	require.EqualValues(t, 2, rec.Event.Count)
	rec, err = s.Get(ctx, &alpha, "a", "nope")
	require.NoError(t, err)
	require.Nil(t, rec)
}
