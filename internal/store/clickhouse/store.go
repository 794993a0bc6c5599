package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/spf13/pflag"
)

// Config says where the store is and how to use it.
type Config struct {
	Addr             string
	Database         string
	Username         string
	Password         string
	DialTimeout      time.Duration
	MaxRetentionDays int
	// Migrate says whether a server role applies pending migrations when it
	// opens the store (the migrate command always does).
	Migrate bool
	// Cluster, when set, is the name of the ClickHouse cluster (in the
	// servers' remote_servers) the store runs on: replicated tables and
	// Distributed tables over them (docs/clickhouse-cluster.md). Empty: a
	// single server.
	Cluster string
	// InsertQuorum, in cluster mode, is how many replicas of a shard must
	// have a batch before the insert returns (ClickHouse's insert_quorum);
	// 0 or 1: the replica written to.
	InsertQuorum int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:        "127.0.0.1:9000",
		Database:    "eventpipe",
		Username:    "default",
		DialTimeout: 5 * time.Second,
		Migrate:     true,
	}
}

// AddFlags adds the store's flags to fs.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "clickhouse.addr", c.Addr, "ClickHouse native-protocol address, host:port")
	fs.StringVar(&c.Database, "clickhouse.database", c.Database, "ClickHouse database that holds the events table (created by migrations)")
	fs.StringVar(&c.Username, "clickhouse.username", c.Username, "ClickHouse user")
	fs.StringVar(&c.Password, "clickhouse.password", c.Password, "ClickHouse password; when empty, the EVENTPIPE_CLICKHOUSE_PASSWORD environment variable is used (preferred: flags show in process lists)")
	fs.DurationVar(&c.DialTimeout, "clickhouse.dial-timeout", c.DialTimeout, "how long to wait for a ClickHouse connection")
	fs.IntVar(&c.MaxRetentionDays, "clickhouse.max-retention-days", c.MaxRetentionDays,
		"table TTL in days on ClickHouse 20.1+, a global safety net applied at every start; 0 leaves the table's TTL as it is")
	fs.BoolVar(&c.Migrate, "clickhouse.migrate", c.Migrate, "apply pending schema migrations at start-up")
	fs.StringVar(&c.Cluster, "clickhouse.cluster", c.Cluster,
		"name of the ClickHouse cluster (remote_servers) to run on: replicated tables on ZooKeeper/Keeper, Distributed tables over the shards, DDL ON CLUSTER; empty: one server (see docs/clickhouse-cluster.md)")
	fs.IntVar(&c.InsertQuorum, "clickhouse.insert-quorum", c.InsertQuorum,
		"with --clickhouse.cluster, how many replicas of a shard must hold a batch before the writer acknowledges it (ClickHouse insert_quorum); 0: the replica written to")
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--clickhouse.addr %q must be host:port", c.Addr))
	}
	if c.Database == "" {
		errs = append(errs, errors.New("--clickhouse.database must not be empty"))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--clickhouse.dial-timeout must be positive, got %s", c.DialTimeout))
	}
	if c.InsertQuorum < 0 {
		errs = append(errs, fmt.Errorf("--clickhouse.insert-quorum must be 0 or more, got %d", c.InsertQuorum))
	}
	if c.InsertQuorum > 1 && c.Cluster == "" {
		errs = append(errs, fmt.Errorf("--clickhouse.insert-quorum %d needs --clickhouse.cluster: a single server has no replicas", c.InsertQuorum))
	}
	if c.MaxRetentionDays < 0 {
		errs = append(errs, fmt.Errorf("--clickhouse.max-retention-days must be 0 or more, got %d", c.MaxRetentionDays))
	}
	return errs
}

func (c *Config) schemaOptions() SchemaOptions {
	return SchemaOptions{MaxRetentionDays: c.MaxRetentionDays, Cluster: c.Cluster}
}

// schemaOptions are the configuration's schema options for this server.
func (s *Store) schemaOptions() SchemaOptions {
	o := s.cfg.schemaOptions()
	o.Server = s.version
	return o
}

// Store is a connection pool to ClickHouse plus what was learnt about the
// server. It is safe for concurrent use.
type Store struct {
	cfg     Config
	conn    driver.Conn
	version ServerVersion
}

// Open connects, checks the server answers, and detects its version once.
// It also checks, before any DDL, that the tables (if any) were made for
// the mode asked for and, in cluster mode, that the server knows the
// cluster and reaches ZooKeeper.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	conn, err := ch.Open(&ch.Options{
		Settings:    connSettings(cfg),
		Protocol:    ch.Native,
		Addr:        []string{cfg.Addr},
		Auth:        ch.Auth{Username: cfg.Username, Password: password(cfg)},
		DialTimeout: cfg.DialTimeout,
		// LZ4 on the wire: batches of similar events shrink several times.
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
		MaxOpenConns: 16,
		MaxIdleConns: 8,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to ClickHouse at %s (--clickhouse.addr): %w", cfg.Addr, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var v string
	if err := conn.QueryRow(pingCtx, "SELECT version()").Scan(&v); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to ClickHouse at %s (--clickhouse.addr): %w", cfg.Addr, err)
	}
	sv, err := ParseServerVersion(v)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to ClickHouse at %s: %w", cfg.Addr, err)
	}
	s := &Store{cfg: cfg, conn: conn, version: sv}
	checkCtx, cancel2 := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel2()
	if err := s.checkCluster(checkCtx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// connSettings are the session settings of every query. In cluster mode:
//
//   - insert_distributed_sync: an insert into a Distributed table returns
//     once every shard's replica has its part, not once the rows sit in the
//     initiator's send queue. The writer acknowledges a batch to JetStream
//     when Insert returns, so Insert must mean "stored in the shard" (DESIGN
//     §3, invariant 1); it also makes the per-shard blocks of a retried batch
//     identical, which replicated deduplication needs.
//   - max_replica_delay_for_distributed_queries=5: a replica known to be
//     more than 5 s behind on fetching inserted parts (one restarted after
//     a crash, once it has loaded its queue) serves no reads through the
//     Distributed tables until it has caught up; its partner does.
//   - insert_quorum, when --clickhouse.insert-quorum is above 1.
//
// Only integer settings: over 18.16's protocol the driver can send no
// others. load_balancing=in_order, which cluster mode needs, is a string:
// it comes from the user's profile, and checkCluster checks it.
func connSettings(cfg Config) ch.Settings {
	if cfg.Cluster == "" {
		return nil
	}
	set := ch.Settings{"insert_distributed_sync": 1, "max_replica_delay_for_distributed_queries": 5}
	if cfg.InsertQuorum > 1 {
		set["insert_quorum"] = cfg.InsertQuorum
	}
	return set
}

// Close releases the connections.
func (s *Store) Close() error { return s.conn.Close() }

// Version returns the server version detected by Open.
func (s *Store) Version() ServerVersion { return s.version }

// Database returns the database name.
func (s *Store) Database() string { return s.cfg.Database }

// Conn exposes the driver connection to tests and benchmarks in this module.
func (s *Store) Conn() driver.Conn { return s.conn }

func (s *Store) table() string { return quoteIdent(s.cfg.Database) + ".events" }

// Insert writes rows as one batch. When it returns nil every row is
// committed and queryable; on error none or some may be, and the caller
// retries the whole batch (duplicates are harmless: reads fold them).
func (s *Store) Insert(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	cols := insertColumns(rows)
	return s.insertBatch(ctx, s.table(), columnNames(), "events", func(b driver.Batch) error {
		for i, c := range cols {
			if err := b.Column(i).Append(c); err != nil {
				return fmt.Errorf("column %s: %w", columns[i].name, err)
			}
		}
		return nil
	})
}

// insertBatch sends one batch of rows into table: fill appends them, and
// when it fails the batch is aborted unsent. what names the rows in the
// errors, "insert what: ...".
func (s *Store) insertBatch(ctx context.Context, table, columnList, what string, fill func(driver.Batch) error) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columnList+")")
	if err != nil {
		return fmt.Errorf("insert %s: prepare batch: %w", what, err)
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return fmt.Errorf("insert %s: %w", what, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %s: %w", what, err)
	}
	return nil
}

// insertColumns lays rows out column by column, in the order of columns:
// column-wise appends avoid per-value reflection on the hot path.
func insertColumns(rows []Row) []any {
	n := len(rows)
	strCol := func(f func(*Row) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	seq := make([]uint64, n)
	op := make([]uint8, n)
	ts := make([]time.Time, n)
	nanos := make([]uint32, n)
	count := make([]int32, n)
	rest := make([]string, n)
	lease := make([]int64, n)
	for i := range rows {
		r := &rows[i]
		seq[i], op[i], ts[i], nanos[i], count[i], rest[i], lease[i] = r.Seq, r.Op, r.LastTime, r.LastNanos, r.Count, string(r.Rest), r.Lease
	}
	cols := []any{
		strCol(func(r *Row) string { return r.ScopeType }),
		strCol(func(r *Row) string { return r.ScopeName }),
		strCol(func(r *Row) string { return r.Namespace }),
		strCol(func(r *Row) string { return r.Name }),
		strCol(func(r *Row) string { return r.UID }),
		seq, op, ts, nanos,
		strCol(func(r *Row) string { return r.InvolvedKind }),
		strCol(func(r *Row) string { return r.InvolvedNamespace }),
		strCol(func(r *Row) string { return r.InvolvedName }),
		strCol(func(r *Row) string { return r.InvolvedUID }),
		strCol(func(r *Row) string { return r.InvolvedAPIVersion }),
		strCol(func(r *Row) string { return r.InvolvedResourceVersion }),
		strCol(func(r *Row) string { return r.InvolvedFieldPath }),
		strCol(func(r *Row) string { return r.Reason }),
		strCol(func(r *Row) string { return r.Message }),
		strCol(func(r *Row) string { return r.Type }),
		strCol(func(r *Row) string { return r.SourceComponent }),
		strCol(func(r *Row) string { return r.SourceHost }),
		strCol(func(r *Row) string { return r.ReportingController }),
		strCol(func(r *Row) string { return r.ReportingInstance }),
		strCol(func(r *Row) string { return r.Action }),
		strCol(func(r *Row) string { return r.RelatedKind }),
		strCol(func(r *Row) string { return r.RelatedNamespace }),
		strCol(func(r *Row) string { return r.RelatedName }),
		count, rest, lease,
	}
	if len(cols) != len(columns) {
		panic("BUG: insert column count does not match the schema")
	}
	return cols
}

// PasswordEnv is read when --clickhouse.password is empty.
const PasswordEnv = "EVENTPIPE_CLICKHOUSE_PASSWORD"

func password(cfg Config) string {
	if cfg.Password != "" {
		return cfg.Password
	}
	return os.Getenv(PasswordEnv)
}
