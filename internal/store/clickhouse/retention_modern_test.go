package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// TestModernUsageAndRetentionSQL is the 26.7 half of
// TestUsageAndRetentionSQL: the same statements, bound the way clickhouse-go
// binds them, run on the embedded modern server with the same expectations.
func TestModernUsageAndRetentionSQL(t *testing.T) {
	db := openChdb(t)
	s := chdbStore(t, db, Config{Database: "eptiers"})
	for _, m := range Migrations {
		if m.supported(s.version) {
			for _, q := range m.Statements(s.cfg.Database, s.schemaOptions()) {
				db.exec(t, q)
			}
		}
	}
	run := func(q string, args ...any) string {
		t.Helper()
		bound, err := bindPositional(q, args...)
		require.NoError(t, err)
		return db.scalar(t, bound)
	}

	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeOrganization, Name: "beta"}
	day1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	line := day2.Add(500 * time.Millisecond)
	mk := func(sc scope.Scope, name string, seq uint64, at time.Time, payload int) Row {
		return Row{ScopeType: sc.Type, ScopeName: sc.Name, Namespace: "ns", Name: name, UID: "uid-" + name,
			Seq: seq, Op: 1, LastTime: at.Truncate(time.Second), LastNanos: uint32(at.Nanosecond()),
			InvolvedKind: "Pod", InvolvedName: "web-" + name, Reason: "BackOff", Message: fmt.Sprintf("message %d", seq),
			Type: "Warning", SourceComponent: "kubelet", Count: 1, Rest: make([]byte, payload)}
	}
	rows := []Row{
		mk(alpha, "a1", 1, day1, 10),
		mk(beta, "b1", 2, day1.Add(time.Hour), 300),
		mk(alpha, "a2", 3, day2.Add(499*time.Millisecond), 20),
		mk(alpha, "a3", 4, day2.Add(500*time.Millisecond), 30),
		mk(alpha, "a4", 5, day2.Add(time.Second), 40),
		mk(beta, "b2", 6, day2, 50),
	}
	for _, batch := range [][]Row{rows[:2], rows[2:]} {
		ins, err := insertSQL(s.table(), batch)
		require.NoError(t, err)
		db.exec(t, ins)
	}

	partsSQL := strings.Replace(s.partitionsSQL(), "max(max_time)", "toUnixTimestamp(max(max_time))", 1)
	parts := func() string {
		return strings.ReplaceAll(run("SELECT arrayStringConcat(groupArray(concat(a, ':', toString(b), ':', toString(c), ':', toString(d > 0))), ' ') FROM ("+partsSQL+") AS t(a, b, c, d)", s.cfg.Database, "events"), "\n", " ")
	}
	// The Partitions query, its time as Unix seconds for comparison.
	require.Equal(t, fmt.Sprintf("20261120:2:%d:0 20261121:4:%d:0", day1.Add(time.Hour).Unix(), day2.Add(time.Second).Unix()), parts())

	var alphaBytes, betaBytes int64
	for _, r := range rows[2:] {
		if r.ScopeName == "alpha" {
			alphaBytes += RowBytes(&r)
		} else {
			betaBytes += RowBytes(&r)
		}
	}
	q, args := s.partitionUsageSQL(20261121, 0)
	require.Equal(t, fmt.Sprintf("Organization\tbeta\t1\t%d\t6\nProject\talpha\t3\t%d\t5", betaBytes, alphaBytes), run(q, args...))
	q, args = s.partitionUsageSQL(20261121, 5)
	require.Equal(t, fmt.Sprintf("Organization\tbeta\t1\t%d\t6", betaBytes), run(q, args...))

	q, args = s.oldestByScopeSQL(line)
	require.Equal(t, "Organization\tbeta\t"+day1.Add(time.Hour).Format(time.DateTime)+"\nProject\talpha\t"+day1.Format(time.DateTime),
		run(q, args...))

	cutoffs := []Cutoff{{Scope: alpha, Before: line}, {Scope: beta, Before: day1.Add(time.Hour)}}
	q, args = s.countPastCutoffsSQL(cutoffs)
	require.Equal(t, "Project\talpha\t2", run(q, args...))

	q, args = s.deletePastCutoffsSQL(cutoffs)
	run(q, args...)
	// chdb runs mutations in the background too: wait as WaitMutations does.
	deadline := time.Now().Add(time.Minute)
	for run("SELECT count() FROM system.mutations WHERE database = ? AND table = 'events' AND is_done = 0", s.cfg.Database) != "0" {
		require.True(t, time.Now().Before(deadline), "mutation did not finish")
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, "a3,a4,b1,b2", run("SELECT arrayStringConcat(arraySort(groupArray(name)), ',') FROM "+s.table()))
	require.Contains(t, parts(), "20261121:3:"+strconv.FormatInt(day2.Add(time.Second).Unix(), 10)+":1", "mutation version set")

	drop, err := s.dropPartitionSQL("20261120")
	require.NoError(t, err)
	db.exec(t, drop)
	require.Equal(t, "a3,a4,b2", run("SELECT arrayStringConcat(arraySort(groupArray(name)), ',') FROM "+s.table()))
}
