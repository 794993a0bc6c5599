package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// columns is the events table's column list in insert order. INSERTs always
// name their columns: 18.16 rejects clickhouse-go batches without the list.
var columns = []struct{ name, typ string }{
	{"scope_type", "String"},
	{"scope_name", "String"},
	{"namespace", "String"},
	{"name", "String"},
	{"uid", "String"},
	{"seq", "UInt64"},
	{"op", "UInt8"},
	{"last_ts", "DateTime"},
	{"last_ts_nanos", "UInt32"},
	{"involved_kind", "String"},
	{"involved_namespace", "String"},
	{"involved_name", "String"},
	{"involved_uid", "String"},
	{"involved_api_version", "String"},
	{"involved_resource_version", "String"},
	{"involved_field_path", "String"},
	{"reason", "String"},
	{"message", "String"},
	{"type", "String"},
	{"source_component", "String"},
	{"source_host", "String"},
	{"reporting_controller", "String"},
	{"reporting_instance", "String"},
	{"action", "String"},
	{"related_kind", "String"},
	{"related_namespace", "String"},
	{"related_name", "String"},
	{"count", "Int32"},
	{"rest", "String"},
	{"lease", "Int64"},
}

// addedBy names the columns a later migration added, with its version:
// migration 1 creates the others, so that every installation, new or
// upgraded, reaches the same table by the same steps.
var addedBy = map[string]int{"lease": 4}

// narrowColumnNames are the columns without the two wide ones (message
// and the protobuf remainder): what choosing a page's rows needs.
func narrowColumnNames() string {
	var names []string
	for _, c := range columns {
		if c.name != "message" && c.name != "rest" {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

func columnNames() string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// ServerVersion is a ClickHouse server's major.minor version.
type ServerVersion struct{ Major, Minor int }

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or newer.
func (v ServerVersion) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseServerVersion reads the output of SELECT version(), e.g. "18.16.1" or
// "24.8.4.13".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("parse server version %q: want major.minor[.patch]", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return ServerVersion{}, fmt.Errorf("parse server version %q: want major.minor[.patch]", s)
	}
	return ServerVersion{Major: maj, Minor: min}, nil
}

// Migration is one versioned, idempotent schema step. A step with MinServer
// set runs only on servers at least that new; on an older server it is left
// unrecorded, so it runs after the server is upgraded.
type Migration struct {
	Version   int
	Name      string
	MinServer *ServerVersion
	// Statements builds the SQL for database db. Each statement must be
	// idempotent (IF NOT EXISTS and the like): a migration interrupted
	// half-way is run again from the start.
	Statements func(db string, o SchemaOptions) []string
}

// SchemaOptions are the settings migrations need.
type SchemaOptions struct {
	// MaxRetentionDays, when positive, becomes a table TTL on servers that
	// support it (20.1+): a global safety net. It is a setting, not a
	// migration: every Migrate applies the current value.
	MaxRetentionDays int
	// Server is the server's version, for statements whose form depends
	// on it.
	Server ServerVersion
	// Cluster, when set, makes every table for cluster mode on the named
	// cluster (see cluster.go).
	Cluster string
}

// settingStatements return the statements that bring the table in line with
// o on a server of version v. Unlike migrations they run on every Migrate,
// so a changed setting takes effect at the next start.
func settingStatements(db string, o SchemaOptions, v ServerVersion) []string {
	if o.MaxRetentionDays <= 0 || !v.AtLeast(20, 1) {
		return nil
	}
	return []string{
		fmt.Sprintf("ALTER TABLE %s%s MODIFY TTL last_ts + INTERVAL %d DAY", o.dataTable(db, "events"), o.onCluster(), o.MaxRetentionDays),
		fmt.Sprintf("ALTER TABLE %s%s MODIFY TTL request_ts + INTERVAL %d DAY", o.dataTable(db, auditTableName), o.onCluster(), o.MaxRetentionDays),
	}
}

// supported reports whether m runs on a server of version v.
func (m Migration) supported(v ServerVersion) bool {
	return m.MinServer == nil || v.AtLeast(m.MinServer.Major, m.MinServer.Minor)
}

// bootstrapStatements create the database and the migrations ledger.
func bootstrapStatements(db string, o SchemaOptions) []string {
	q := quoteIdent(db)
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + q + o.onCluster(),
		"CREATE TABLE IF NOT EXISTS " + q + "." + o.ledger() + o.onCluster() + " (version UInt32, name String, applied_at DateTime) ENGINE = " + o.ledgerEngine(db) + " ORDER BY version",
	}
}

// Migrations lists every schema step in order.
var Migrations = []Migration{
	{
		Version: 1,
		Name:    "create events table",
		Statements: func(db string, o SchemaOptions) []string {
			var cols []string
			for _, c := range columns {
				if addedBy[c.name] != 0 {
					continue
				}
				cols = append(cols, "    "+c.name+" "+c.typ)
			}
			// Sort key: the tenant and the hour lead, so a tenant's time range
			// is one contiguous stretch of the index (EventQuery, native list);
			// namespace and name follow so one namespace's rows are skippable
			// within the hour and an event's states sit together. seq ends the
			// key so that an exact duplicate of a state (same message written
			// twice after a crash) has an identical key and ReplacingMergeTree
			// folds it away on merge; reads never depend on that merge.
			// Day partitions make retention a DROP PARTITION.
			//
			// Granules of 1,024 rows, not ClickHouse's 8,192: with 1,000 tenants
			// a tenant has a few hundred rows per day partition, and a query
			// reads at least one granule per partition it touches, so with
			// 8,192-row granules a 60-day EventQuery read many times the
			// tenant's rows (bench/README.md, "EventQuery"). Tables created
			// before keep 8,192.
			return append([]string{
				"CREATE DATABASE IF NOT EXISTS " + quoteIdent(db) + o.onCluster(),
				"CREATE TABLE IF NOT EXISTS " + o.dataTable(db, "events") + o.onCluster() + " (\n" + strings.Join(cols, ",\n") + "\n)" +
					" ENGINE = " + o.replacingEngine(db, "events", "") +
					" PARTITION BY toYYYYMMDD(last_ts)" +
					" ORDER BY (scope_type, scope_name, toStartOfHour(last_ts), namespace, name, seq)" +
					" SETTINGS index_granularity = 1024",
			}, o.distributedTable(db, "events")...)
		},
	},
	{
		Version:   2,
		Name:      "skip indexes for selective filters",
		MinServer: &ServerVersion{Major: 20, Minor: 1},
		Statements: func(db string, o SchemaOptions) []string {
			t := o.dataTable(db, "events") + o.onCluster()
			return []string{
				"ALTER TABLE " + t + " ADD INDEX IF NOT EXISTS idx_reason reason TYPE set(256) GRANULARITY 4",
				"ALTER TABLE " + t + " ADD INDEX IF NOT EXISTS idx_involved_name involved_name TYPE bloom_filter(0.01) GRANULARITY 4",
				"ALTER TABLE " + t + " ADD INDEX IF NOT EXISTS idx_uid uid TYPE bloom_filter(0.01) GRANULARITY 4",
			}
		},
	},
	{
		Version:    3,
		Name:       "create activities table",
		Statements: activitiesMigration, // activity.go
	},
	{
		Version: 4,
		Name:    "etcd lease of each state",
		// The etcd front ends the events of an expired lease; it finds
		// them by this column (see Store.LeaseKeys).
		Statements: func(db string, o SchemaOptions) []string {
			// 18.16 has no IF NOT EXISTS here; the migration record keeps
			// it from running twice there.
			ifNotExists := ""
			if o.Server.AtLeast(20, 1) {
				ifNotExists = "IF NOT EXISTS "
			}
			return o.alterColumn(db, "events", "ADD COLUMN "+ifNotExists+"lease Int64 DEFAULT 0")
		},
	},
	{
		Version:    5,
		Name:       "create audit_records table",
		Statements: auditMigration, // audit.go
	},
}

// quoteIdent quotes a ClickHouse identifier with backticks.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// Migrate applies every migration not yet recorded in db.schema_migrations
// (db.schema_migrations_cluster in cluster mode) and returns the versions
// it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	db := quoteIdent(s.cfg.Database)
	ledger := db + "." + s.schemaOptions().ledger()
	for _, q := range bootstrapStatements(s.cfg.Database, s.schemaOptions()) {
		if err := s.conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	done := map[int]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM "+ledger)
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: read applied versions: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	var applied []int
	for _, m := range Migrations {
		if done[m.Version] {
			continue
		}
		if !m.supported(s.version) {
			continue
		}
		for _, q := range m.Statements(s.cfg.Database, s.schemaOptions()) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return applied, fmt.Errorf("migrate: step %d (%s): %w", m.Version, m.Name, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return applied, fmt.Errorf("migrate: record step %d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	for _, q := range settingStatements(s.cfg.Database, s.schemaOptions(), s.version) {
		if err := s.conn.Exec(ctx, q); err != nil {
			return applied, fmt.Errorf("migrate: apply settings: %w", err)
		}
	}
	return applied, nil
}

// recordMigration notes m as applied. It goes through a batch, not an INSERT
// … VALUES statement: over the native protocol 18.16 waits for a data block
// after any INSERT, and only the batch path sends one.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+quoteIdent(s.cfg.Database)+"."+s.schemaOptions().ledger()+" (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now()); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}
