package clickhouse

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModernClusterDDLParses: chdb has no ZooKeeper and no clusters, so
// cluster mode's DDL cannot run on 26.7 in process; what can be checked is
// that ClickHouse 26.7 parses every statement cluster mode sends (ON
// CLUSTER, ReplicatedReplacingMergeTree with macros, Distributed), and
// formats it back with the same engines.
func TestModernClusterDDLParses(t *testing.T) {
	db := openChdb(t)
	v, err := ParseServerVersion(db.scalar(t, "SELECT version()"))
	require.NoError(t, err)
	o := SchemaOptions{Cluster: "eventpipe", Server: v, MaxRetentionDays: 60}
	stmts := bootstrapStatements("eventpipe", o)
	for _, m := range Migrations {
		stmts = append(stmts, m.Statements("eventpipe", o)...)
	}
	stmts = append(stmts, settingStatements("eventpipe", o, v)...)
	var engines []string
	for _, q := range stmts {
		require.Contains(t, q, "ON CLUSTER `eventpipe`", "every DDL statement runs on the whole cluster")
		out, err := db.query("SELECT formatQuery("+sqlString(q)+")", "TabSeparatedRaw")
		require.NoError(t, err, q)
		f := string(out)
		if i := strings.Index(f, "ENGINE = "); i >= 0 {
			engines = append(engines, strings.SplitN(f[i+len("ENGINE = "):], "(", 2)[0])
		}
	}
	require.Equal(t, []string{"ReplicatedMergeTree", // the ledger
		"ReplicatedReplacingMergeTree", "Distributed", // events
		"ReplicatedReplacingMergeTree", "Distributed", // activities
		"Distributed",                                 // events again, with the lease column
		"ReplicatedReplacingMergeTree", "Distributed", // audit records
	}, engines)
}
