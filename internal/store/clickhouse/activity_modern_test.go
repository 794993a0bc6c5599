package clickhouse

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// TestModernClickHouseActivities runs the activity queries on ClickHouse
// 26.7 (chdb), the modern half of the matrix TestActivities runs on 18.16.
func TestModernClickHouseActivities(t *testing.T) {
	db := openChdb(t)
	s := chdbStore(t, db, Config{Database: "eventpipe"})
	for range 2 { // idempotent
		for _, q := range activitiesMigration(s.cfg.Database, SchemaOptions{}) {
			db.exec(t, q)
		}
	}
	now := time.Now().UTC()
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	type r struct {
		sc       scope.Scope
		ns, name string
		seq      uint64
		ago      time.Duration
		kind, s  string
	}
	var vals []string
	for _, x := range []r{{alpha, "prod", "a", 1, 3 * time.Minute, "Pod", "a1"}, {alpha, "dev", "b", 2, 2 * time.Minute, "Deployment", "b1"},
		{beta, "prod", "c", 3, time.Minute, "Pod", "c1"}, {alpha, "prod", "a", 4, 30 * time.Second, "Pod", "a2"},
		{alpha, "prod", "a", 5, 10 * time.Second, "Pod", "a3"}, {alpha, "dev", "b", 2, 2 * time.Minute, "Deployment", "b1"}} {
		ts := now.Add(-x.ago)
		lit, err := bindPositional("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", x.sc.Type, x.sc.Name, x.ns, x.name, x.seq, x.seq*10,
			ts.Truncate(time.Second), uint32(ts.Nanosecond()), x.kind, x.name+"-obj", "kubelet", "X", "Normal", x.s, "{}")
		require.NoError(t, err)
		vals = append(vals, lit)
	}
	db.exec(t, "INSERT INTO "+s.activityTable()+" ("+activityColumnNames()+") VALUES "+strings.Join(vals, ", "))
	list := func(q ActivityQuery) []string {
		sql, args, err := s.activitySQL(q)
		require.NoError(t, err)
		bound, err := bindPositional(sql, args...)
		require.NoError(t, err)
		out, err := db.query("SELECT summary, last_ts_nanos FROM ("+bound+")", "JSONEachRow")
		require.NoError(t, err, bound)
		var got []string
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var row struct {
				Summary string `json:"summary"`
			}
			require.NoError(t, dec.Decode(&row))
			got = append(got, row.Summary)
		}
		return got
	}
	require.Equal(t, []string{"a3", "c1", "b1"}, list(ActivityQuery{}))
	require.Equal(t, []string{"a3", "b1"}, list(ActivityQuery{Scope: &alpha}))
	require.Equal(t, []string{"a2", "b1"}, list(ActivityQuery{Scope: &alpha, AtSeq: 4}))
	require.Equal(t, []string{"b1"}, list(ActivityQuery{Conds: []FieldCond{{Field: "spec.resource.kind", Value: "Deployment"}}}))
	require.Equal(t, []string{"a3"}, list(ActivityQuery{Since: now.Add(-45 * time.Second)}))
	cTime := now.Add(-time.Minute)
	require.Equal(t, []string{"b1"}, list(ActivityQuery{After: &ActivityCursor{LastTime: cTime.Truncate(time.Second), LastNanos: uint32(cTime.Nanosecond()),
		Namespace: "prod", Name: "c", Scope: beta}}))
}
