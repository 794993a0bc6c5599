package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Cluster mode (--clickhouse.cluster NAME) keeps each table's rows in a
// replicated local table, <table>_local, on every server of the cluster,
// and puts a Distributed table under the table's usual name over them.
// Reads and writes name the Distributed table, so the store's queries are
// the single-node ones, with two exceptions for 18.16's distributed
// execution (globalIn, and the audit page in auditSQL); DDL and the
// maintenance statements (retention's partition drops and deletes) name
// the local tables ON CLUSTER.
//
// Each Distributed table shards by its rows' identity (an event's scope,
// namespace and name; an audit record's scope, audit ID and stage), so
// every state of one identity lands on one shard: "latest state per
// identity" (LIMIT 1 BY) and ReplacingMergeTree's folding of exact
// duplicates work within a shard, and the Distributed table's merge of the
// shards' answers repeats them over disjoint sets.

// shardKeys are the sharding expressions of the Distributed tables, by
// table.
var shardKeys = map[string]string{
	"events":       "cityHash64(scope_type, scope_name, namespace, name)",
	"activities":   "cityHash64(scope_type, scope_name, namespace, name)",
	auditTableName: "cityHash64(scope_type, scope_name, audit_id, stage)",
}

// localSuffix names a Distributed table's local tables.
const localSuffix = "_local"

// onCluster is the ON CLUSTER clause of DDL in cluster mode, or nothing.
func (o SchemaOptions) onCluster() string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quoteIdent(o.Cluster)
}

// dataTable is the table that stores table's rows: the table itself on a
// single node, its local table in cluster mode.
func (o SchemaOptions) dataTable(db, table string) string {
	// Table names are the store's own constants: quoted databases only.
	if o.Cluster == "" {
		return quoteIdent(db) + "." + table
	}
	return quoteIdent(db) + "." + table + localSuffix
}

// replacingEngine is the ENGINE clause of table's data table:
// ReplacingMergeTree, or in cluster mode its replicated form, whose
// ZooKeeper path holds the {shard} macro (replicas of one shard share it)
// and whose replica name is the {replica} macro. version is the
// ReplacingMergeTree version column, or empty.
func (o SchemaOptions) replacingEngine(db, table, version string) string {
	if o.Cluster == "" {
		if version == "" {
			return "ReplacingMergeTree"
		}
		return "ReplacingMergeTree(" + version + ")"
	}
	args := []string{
		sqlString("/clickhouse/tables/{shard}/" + db + "/" + table + localSuffix),
		sqlString("{replica}"),
	}
	if version != "" {
		args = append(args, version)
	}
	return "ReplicatedReplacingMergeTree(" + strings.Join(args, ", ") + ")"
}

// distributedTable returns, in cluster mode, the statement creating the
// Distributed table over table's local tables (which must exist: it copies
// their columns); on a single node nothing.
func (o SchemaOptions) distributedTable(db, table string) []string {
	if o.Cluster == "" {
		return nil
	}
	key, ok := shardKeys[table]
	if !ok {
		panic("BUG: no shard key for table " + table)
	}
	return []string{"CREATE TABLE IF NOT EXISTS " + quoteIdent(db) + "." + table + o.onCluster() +
		" AS " + o.dataTable(db, table) +
		" ENGINE = Distributed(" + quoteIdent(o.Cluster) + ", " + quoteIdent(db) + ", " + table + localSuffix + ", " + key + ")"}
}

// alterColumn returns the statements that change table's columns: the data
// table's, and in cluster mode the Distributed table's too, which does not
// follow its local tables by itself. 18.16 refuses ALTER … ON CLUSTER of a
// Distributed table on a cluster of replicated shards, so it is made again
// from its local table: it holds no rows (inserts are synchronous), and
// both statements are idempotent, so an interrupted migration runs again.
func (o SchemaOptions) alterColumn(db, table, clause string) []string {
	out := []string{"ALTER TABLE " + o.dataTable(db, table) + o.onCluster() + " " + clause}
	if o.Cluster != "" {
		out = append(out, "DROP TABLE IF EXISTS "+quoteIdent(db)+"."+table+o.onCluster())
		out = append(out, o.distributedTable(db, table)...)
	}
	return out
}

// sqlString quotes s as a ClickHouse string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}

// ledger is the migrations ledger's table name. Cluster mode keeps its own
// ledger, replicated to every server, so that a single-node installation
// being moved to cluster mode (docs/clickhouse-cluster.md) runs every
// cluster migration although its own ledger says they ran.
func (o SchemaOptions) ledger() string {
	if o.Cluster == "" {
		return "schema_migrations"
	}
	return "schema_migrations_cluster"
}

// ledgerEngine is the ledger's engine: one ledger for the whole cluster
// (no {shard} in its path; the replica name is unique across shards).
func (o SchemaOptions) ledgerEngine(db string) string {
	if o.Cluster == "" {
		return "MergeTree"
	}
	return "ReplicatedMergeTree(" + sqlString("/clickhouse/tables/all/"+db+"/"+o.ledger()) + ", " + sqlString("{shard}-{replica}") + ")"
}

// ErrSchemaMode is wrapped by the start-up error when the tables were made
// for the other mode (single node vs --clickhouse.cluster).
var ErrSchemaMode = errors.New("tables made for the other mode")

// checkCluster checks, before any DDL, that the server can run cluster
// mode as configured: it knows the cluster, it reaches its ZooKeeper, and
// the tables (if any) were made for the mode asked for. A single node
// checks the last only. Each error names the flag and what to do.
func (s *Store) checkCluster(ctx context.Context) error {
	c := s.cfg.Cluster
	if c != "" {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", c).Scan(&n); err != nil {
			return fmt.Errorf("--clickhouse.cluster %q: read system.clusters on %s: %w", c, s.cfg.Addr, err)
		}
		if n == 0 {
			known, _ := s.knownClusters(ctx)
			return fmt.Errorf("--clickhouse.cluster %q: the server at %s (--clickhouse.addr) has no such cluster in its remote_servers configuration (it knows: %s); name one of those, or add the cluster to every server's configuration",
				c, s.cfg.Addr, strings.Join(known, ", "))
		}
		var nodes uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&nodes); err != nil {
			return fmt.Errorf("--clickhouse.cluster %q: the server at %s cannot reach ZooKeeper, which replicated tables and ON CLUSTER DDL need: %w; check the <zookeeper> section of the servers' configuration and that ZooKeeper (or ClickHouse Keeper) is up", c, s.cfg.Addr, err)
		}
	}
	if c != "" {
		// Reads must see the writes acknowledged before them: with
		// in_order, reads and writes go to the same replica of each shard
		// (the first that is up), never to a partner still fetching the
		// part.
		var lb string
		if err := s.conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'load_balancing'").Scan(&lb); err != nil {
			return fmt.Errorf("--clickhouse.cluster %q: read the load_balancing setting: %w", c, err)
		}
		if lb != "in_order" {
			return fmt.Errorf("--clickhouse.cluster %q: user %s on %s has load_balancing=%s; cluster mode needs load_balancing=in_order in that user's settings profile (users.xml), so that reads go to the replica the writes went to (docs/clickhouse-cluster.md)",
				c, s.cfg.Username, s.cfg.Addr, lb)
		}
	}
	var engine string
	rows, err := s.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = 'events'", s.cfg.Database)
	if err != nil {
		return fmt.Errorf("read the events table's engine: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&engine); err != nil {
			rows.Close()
			return fmt.Errorf("read the events table's engine: %w", err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the events table's engine: %w", err)
	}
	switch {
	case engine == "":
		return nil // nothing made yet: Migrate makes the tables for this mode
	case c != "" && engine != "Distributed":
		return fmt.Errorf("--clickhouse.cluster %q: %w: database %s on %s holds single-node tables (events is %s); move them to cluster mode as docs/clickhouse-cluster.md describes, or start without --clickhouse.cluster",
			c, ErrSchemaMode, s.cfg.Database, s.cfg.Addr, engine)
	case c == "" && engine == "Distributed":
		return fmt.Errorf("%w: database %s on %s holds cluster-mode tables (events is Distributed); start with --clickhouse.cluster NAME, the cluster they were made on",
			ErrSchemaMode, s.cfg.Database, s.cfg.Addr)
	}
	return nil
}

func (s *Store) knownClusters(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out, rows.Err()
}

// systemTable is a system table as seen across the cluster: one replica of
// every shard (the cluster table function; 18.16 has no
// clusterAllReplicas), or the server's own on a single node. Queries on it
// name the data tables (dataTableName), and they sum what the shards hold.
func (s *Store) systemTable(name string) string {
	if s.cfg.Cluster == "" {
		return "system." + name
	}
	return "cluster(" + sqlString(s.cfg.Cluster) + ", system, " + name + ")"
}

// dataTableName is the unquoted name of table's data table, as system
// tables list it.
func (s *Store) dataTableName(table string) string {
	if s.cfg.Cluster == "" {
		return table
	}
	return table + localSuffix
}

// globalIn is the operator of the queries that pick a page's sequences in
// a subquery (PREWHERE seq IN (…)). In cluster mode it is GLOBAL IN: the
// subquery, itself over the Distributed table, runs once on the server the
// store talks to, over every shard, as it would on one server, and its set
// is shipped to the shards; a plain IN would be refused (double-distributed
// subquery), and distributed_product_mode, a string setting, cannot be sent
// to 18.16 by the driver.
func (s *Store) globalIn() string {
	if s.cfg.Cluster == "" {
		return "IN"
	}
	return "GLOBAL IN"
}
