package clickhouse

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// chdbHistory runs the SQL of QueryHistory on chdb and decodes the rows.
func chdbHistory(t *testing.T, db *chdbSession, s *Store, q HistoryQuery) []HistoryRecord {
	t.Helper()
	sql, args, err := s.historySQL(q)
	require.NoError(t, err)
	var recs []HistoryRecord
	for _, r := range chdbRows(t, db, historyOrder, sql, args...) {
		rec, err := DecodeRow(&r)
		require.NoError(t, err)
		recs = append(recs, HistoryRecord{Record: rec, LastTime: r.LastTime.Add(time.Duration(r.LastNanos))})
	}
	return recs
}

// TestModernEventQuery runs the EventQuery and facet SQL on ClickHouse 26.7
// (the other half of the matrix; TestQueryHistoryMatchesBruteForce runs it
// on 18.16) against the same brute-force answers.
func TestModernEventQuery(t *testing.T) {
	db := openChdb(t)
	s := &Store{cfg: Config{Database: "eventpipe"}}
	cs := &Store{cfg: Config{Database: "eventpipe", Cluster: "eventpipe"}}
	for _, m := range Migrations {
		if m.MinServer != nil {
			continue // extras the queries do not need
		}
		for _, q := range m.Statements(s.cfg.Database, SchemaOptions{}) {
			db.exec(t, q)
		}
	}
	now := time.Now().UTC()
	rows, states := genHistory(t, now, 300)
	for i := 0; i < len(rows); i += 100 {
		ins, err := insertSQL(s.table(), rows[i:min(i+100, len(rows))])
		require.NoError(t, err)
		db.exec(t, ins)
	}
	atSeq := states[len(states)-1].rec.Seq
	for name, f := range historyCases(t, now, atSeq) {
		t.Run(name, func(t *testing.T) {
			want := bruteHistory(states, f)
			// The page query, and cluster mode's form of it (GLOBAL IN)
			// run on the plain table as a shard would.
			for _, st := range []*Store{s, cs} {
				var got []HistoryRecord
				q := HistoryQuery{HistoryFilter: f, Limit: 9}
				for {
					recs := chdbHistory(t, db, st, q)
					got = append(got, recs...)
					if len(recs) < q.Limit {
						break
					}
					k := HistoryKeyOf(recs[len(recs)-1].Record, recs[len(recs)-1].LastTime)
					q.After = &k
				}
				require.Len(t, got, len(want), "cluster mode %q", st.cfg.Cluster)
				for i := range want {
					require.Equal(t, want[i].rec.Seq, got[i].Seq, "item %d, cluster mode %q", i, st.cfg.Cluster)
				}
			}

			wantFacets, wantBuckets := bruteFacets(want, f, 6*time.Hour)
			sql, args, err := s.facetSQL(f, FacetNames(), 3)
			require.NoError(t, err)
			bound, err := bindPositional(sql, args...)
			require.NoError(t, err)
			gotFacets := map[string][]FacetValue{}
			for _, line := range strings.Split(strings.TrimSpace(db.scalar(t, bound)), "\n") {
				if line == "" {
					continue
				}
				p := strings.Split(line, "\t")
				n, err := strconv.ParseUint(p[2], 10, 64)
				require.NoError(t, err)
				gotFacets[p[0]] = append(gotFacets[p[0]], FacetValue{Value: p[1], Count: n})
			}
			for _, name := range FacetNames() {
				require.Equal(t, topFacet(wantFacets[name], 3), gotFacets[name], "facet %s", name)
			}
			sql, args, err = s.histogramSQL(f, 6*time.Hour)
			require.NoError(t, err)
			bound, err = bindPositional(sql, args...)
			require.NoError(t, err)
			gotBuckets := make([]uint64, len(wantBuckets))
			for _, line := range strings.Split(strings.TrimSpace(db.scalar(t, bound)), "\n") {
				if line == "" {
					continue
				}
				p := strings.Split(line, "\t")
				b, _ := strconv.Atoi(p[0])
				n, _ := strconv.ParseUint(p[1], 10, 64)
				gotBuckets[b] = n
			}
			require.Equal(t, wantBuckets, gotBuckets)
		})
	}
}
