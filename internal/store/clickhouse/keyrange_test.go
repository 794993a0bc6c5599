package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// TestRangeKeysInEtcdOrder checks the etcd front's reads: keys compared and
// ordered byte by byte as namespace/name ("a-b/x" before "a/y", which List
// orders the other way), only live latest states, the lease filter, counts,
// and that the lease survives the round trip.
func TestRangeKeysInEtcdOrder(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	sc := scope.Scope{Type: scope.TypeProject, Name: "cluster"}
	other := scope.Scope{Type: scope.TypeProject, Name: "other"}
	var rows []chstore.Row
	seq := uint64(0)
	add := func(sc scope.Scope, op eventlog.Op, ns, name string, lease int64) {
		seq++
		ev := eventtest.BackOff(ns, name, 1, now)
		row, err := chstore.EncodeRow(&eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ns, Name: name}, Op: op, Event: ev, Seq: seq, Lease: lease}, now)
		require.NoError(t, err)
		rows = append(rows, row)
	}
	add(sc, eventlog.OpCreate, "a", "y", 7)
	add(sc, eventlog.OpCreate, "a-b", "x", 7)
	add(sc, eventlog.OpCreate, "a", "z", 7)
	add(sc, eventlog.OpUpdate, "a", "z", 8) // re-leased by its update
	add(sc, eventlog.OpCreate, "b", "gone", 7)
	add(sc, eventlog.OpDelete, "b", "gone", 7)
	add(sc, eventlog.OpCreate, "b", "expired", 7)
	add(sc, eventlog.OpExpire, "b", "expired", 7)
	add(other, eventlog.OpCreate, "a", "y", 7)
	require.NoError(t, s.Insert(ctx, rows))

	keys := func(recs []*eventlog.Record) (out []string) {
		for _, r := range recs {
			out = append(out, r.Key.Namespace+"/"+r.Key.Name)
		}
		return out
	}
	f := chstore.LatestFilter{Scope: &sc}
	got, err := s.RangeKeys(ctx, chstore.KeyRange{LatestFilter: f})
	require.NoError(t, err)
	require.Equal(t, []string{"a-b/x", "a/y", "a/z"}, keys(got))
	require.EqualValues(t, 8, got[2].Lease, "the lease of the latest state")

	got, err = s.RangeKeys(ctx, chstore.KeyRange{LatestFilter: f, From: "a/", To: "a0", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"a/y"}, keys(got))
	got, err = s.RangeKeys(ctx, chstore.KeyRange{LatestFilter: f, From: "a/y\x00"})
	require.NoError(t, err)
	require.Equal(t, []string{"a/z"}, keys(got), "a range starts after the key before it")

	got, err = s.RangeKeys(ctx, chstore.KeyRange{LatestFilter: f, Lease: 7})
	require.NoError(t, err)
	require.Equal(t, []string{"a-b/x", "a/y"}, keys(got), "a/z's latest state holds lease 8")

	n, err := s.CountKeys(ctx, chstore.KeyRange{LatestFilter: f, From: "a-c"})
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	n, err = s.CountKeys(ctx, chstore.KeyRange{LatestFilter: chstore.LatestFilter{Scope: &sc, AtSeq: 3}})
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "as of sequence 3")

	_, err = s.RangeKeys(ctx, chstore.KeyRange{})
	require.Error(t, err, "a key range without a scope is refused")

	hist, err := s.Latest(ctx, chstore.LatestFilter{Scope: &sc, Namespace: ptr("b")})
	require.NoError(t, err)
	require.Empty(t, hist, "deleted and expired events are not live")
}

func ptr[T any](v T) *T { return &v }
