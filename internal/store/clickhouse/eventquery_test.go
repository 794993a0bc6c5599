package clickhouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

// openInternalStore starts a private ClickHouse (18.16 here) and migrates.
func openInternalStore(t *testing.T) *Store {
	t.Helper()
	srv := chtest.ForTest(t)
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr
	s, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Migrate(context.Background())
	require.NoError(t, err)
	return s
}

// historyStore is a migrated store holding genHistory's realistic mix of
// states, generated relative to the now it returns.
func historyStore(t *testing.T) (*Store, time.Time, []historyState) {
	t.Helper()
	s := openInternalStore(t)
	now := time.Now().UTC()
	rows, states := genHistory(t, now, 400)
	require.NoError(t, s.Insert(context.Background(), rows))
	return s, now, states
}

func TestQueryHistoryMatchesBruteForce(t *testing.T) {
	s, now, states := historyStore(t)
	ctx := context.Background()
	atSeq := states[len(states)-1].rec.Seq

	for name, f := range historyCases(t, now, atSeq) {
		t.Run(name, func(t *testing.T) {
			want := bruteHistory(states, f)
			require.NotEmpty(t, want, "the case must select something to be meaningful")
			// Page through with small pages: the keyset cursor must neither
			// skip nor repeat, ties included.
			var got []HistoryRecord
			q := HistoryQuery{HistoryFilter: f, Limit: 7}
			for page := 0; ; page++ {
				require.Less(t, page, 1000)
				recs, err := s.QueryHistory(ctx, q, Limits{MaxRowsToRead: 1e6, MaxExecutionTime: 10 * time.Second})
				require.NoError(t, err)
				got = append(got, recs...)
				if len(recs) < q.Limit {
					break
				}
				last := recs[len(recs)-1]
				k := HistoryKeyOf(last.Record, last.LastTime)
				q.After = &k
			}
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, want[i].rec.Key, got[i].Key, "item %d", i)
				require.Equal(t, want[i].rec.Seq, got[i].Seq, "item %d is the latest state", i)
				require.True(t, want[i].last.Equal(got[i].LastTime), "item %d: %s != %s", i, want[i].last, got[i].LastTime)
				require.Equal(t, want[i].rec.Event.Reason, got[i].Event.Reason)
			}

			res, err := s.QueryFacets(ctx, f, FacetNames(), 3, 6*time.Hour, Limits{MaxRowsToRead: 1e6, MaxExecutionTime: 10 * time.Second})
			require.NoError(t, err)
			wantFacets, wantBuckets := bruteFacets(want, f, 6*time.Hour)
			require.Equal(t, wantBuckets, res.Buckets)
			require.EqualValues(t, len(want), res.Total)
			for _, name := range FacetNames() {
				top := topFacet(wantFacets[name], 3)
				require.Equal(t, top, res.Facets[name], "facet %s", name)
			}
		})
	}
}

func TestQueryHistoryLimits(t *testing.T) {
	s, now, states := historyStore(t)
	ctx := context.Background()
	f := HistoryFilter{Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: states[len(states)-1].rec.Seq}
	_, err := s.QueryHistory(ctx, HistoryQuery{HistoryFilter: f, Limit: 10}, Limits{MaxRowsToRead: 10})
	require.True(t, errors.Is(err, ErrTooManyRows), "%v", err)
	_, err = s.QueryFacets(ctx, f, FacetNames(), 3, time.Hour, Limits{MaxRowsToRead: 10})
	require.True(t, errors.Is(err, ErrTooManyRows), "%v", err)
}
