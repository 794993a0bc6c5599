package clickhouse

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModernClickHouseAudit runs the audit migration and queries on
// ClickHouse 26.7 (chdb), the modern half of the matrix TestAudit runs on
// 18.16: the same fixture, the same cases, the same answers.
func TestModernClickHouseAudit(t *testing.T) {
	db := openChdb(t)
	s := chdbStore(t, db, Config{Database: "eventpipe"})
	db.exec(t, "CREATE DATABASE IF NOT EXISTS eventpipe")
	for range 2 { // idempotent
		for _, q := range auditMigration(s.cfg.Database, SchemaOptions{}) {
			db.exec(t, q)
		}
	}
	rows := auditFixture()
	var vals []string
	for _, r := range append(rows, rows[:4]...) {
		lit, err := bindPositional("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r.ScopeType, r.ScopeName, r.AuditID, r.Stage,
			r.Seq, r.RequestTime, r.RequestNanos, r.StageTime, r.Level, r.Verb, r.User, r.UserGroups, r.Namespace, r.APIGroup, r.APIVersion,
			r.Resource, r.Subresource, r.Name, r.Code, r.SourceIP, r.UserAgent, r.Body)
		require.NoError(t, err)
		vals = append(vals, lit)
	}
	db.exec(t, "INSERT INTO "+s.auditTable()+" ("+auditColumnNames()+") VALUES "+strings.Join(vals, ", "))

	// The cluster mode's forms of the queries (GLOBAL IN, the page folded
	// in a subquery) run here on the plain table, as a shard's would.
	for _, mode := range []struct {
		name string
		s    *Store
	}{{"single", s}, {"cluster forms", &Store{cfg: Config{Database: "eventpipe", Cluster: "eventpipe"}, version: s.version}}} {
		t.Run(mode.name, func(t *testing.T) { modernAuditCases(t, db, mode.s) })
	}
}

func modernAuditCases(t *testing.T, db *chdbSession, s *Store) {
	for _, c := range auditCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.q.AtSeq == 0 {
				t.Fatal("BUG: the cases always set a watermark")
			}
			sql, args, err := s.auditSQL(c.q)
			require.NoError(t, err)
			bound, err := bindPositional(sql, args...)
			require.NoError(t, err)
			out, err := db.query("SELECT audit_id, stage, user_groups FROM ("+bound+")", "JSONEachRow")
			require.NoError(t, err, bound)
			var got []string
			dec := json.NewDecoder(strings.NewReader(string(out)))
			for dec.More() {
				var row struct {
					AuditID string   `json:"audit_id"`
					Stage   string   `json:"stage"`
					Groups  []string `json:"user_groups"`
				}
				require.NoError(t, dec.Decode(&row))
				require.Len(t, row.Groups, 2)
				got = append(got, row.AuditID+"/"+row.Stage)
			}
			// "nothing committed" is answered by QueryAudit without a
			// query; the SQL must agree.
			require.Equal(t, c.want, got)
			if c.q.After == nil && c.q.Limit >= 100 {
				cq, cargs := s.countAuditSQL(c.q)
				bound, err := bindPositional(cq, cargs...)
				require.NoError(t, err)
				require.Equal(t, strconv.Itoa(len(c.want)), db.scalar(t, bound), "count agrees with the records")
			}
		})
	}
}
