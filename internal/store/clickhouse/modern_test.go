package clickhouse

// TestModernClickHouse is the modern half of the two-version matrix
// (docs/architecture.md#clickhouse-versions): the same migrations and read queries that store_test.go runs
// against Debian's clickhouse-server 18.16 over the native protocol run here
// against ClickHouse 26.7, embedded in-process as libchdb.so
// (scripts/install-chdb.sh installs it).
//
// The library is loaded with purego, exactly as github.com/chdb-io/chdb-go's
// chdb-purego package does (no cgo), but by this test rather than in a package
// init: chdb-go panics at init when libchdb.so is absent, which would crash
// every test in this package, the 18.16 ones included, on any machine
// without the (large) library. Loading it here lets the test skip instead.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// defaultChdbLib is where scripts/install-chdb.sh puts the library; the
// CHDB_LIB_PATH environment variable overrides it, as it does for chdb-go.
const defaultChdbLib = "/usr/local/lib/libchdb.so"

func chdbLibPath() string {
	if p := os.Getenv("CHDB_LIB_PATH"); p != "" {
		return p
	}
	return defaultChdbLib
}

// chdbAPI is the part of chdb's C API (chdb.h, the "new API" chdb-go v1.11.0
// binds) that the test uses. chdb_connect returns a chdb_connection* and
// chdb_query takes the chdb_connection itself; like chdb-go, we model the
// former as a pointer to a struct holding the latter.
type chdbAPI struct {
	connect      func(argc int, argv []*byte) *chdbConnection
	closeConn    func(conn *chdbConnection)
	query        func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	resultBuffer func(res unsafe.Pointer) *byte
	resultLength func(res unsafe.Pointer) uint
	resultError  func(res unsafe.Pointer) string
	destroy      func(res unsafe.Pointer)
}

type chdbConnection struct{ internal unsafe.Pointer }

var (
	chdbOnce    sync.Once
	chdbLibAPI  *chdbAPI
	chdbLoadErr error
)

// loadChdb opens the library once per process.
func loadChdb(path string) (*chdbAPI, error) {
	chdbOnce.Do(func() {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			chdbLoadErr = fmt.Errorf("dlopen %s: %w", path, err)
			return
		}
		api := &chdbAPI{}
		for name, fn := range map[string]any{
			"chdb_connect":              &api.connect,
			"chdb_close_conn":           &api.closeConn,
			"chdb_query":                &api.query,
			"chdb_result_buffer":        &api.resultBuffer,
			"chdb_result_length":        &api.resultLength,
			"chdb_result_error":         &api.resultError,
			"chdb_destroy_query_result": &api.destroy,
		} {
			if _, err := purego.Dlsym(h, name); err != nil {
				chdbLoadErr = fmt.Errorf("%s lacks %s (not a chdb 3.x+ library?): %w", path, name, err)
				return
			}
			purego.RegisterLibFunc(fn, h, name)
		}
		chdbLibAPI = api
	})
	return chdbLibAPI, chdbLoadErr
}

// chdbSession is an embedded ClickHouse with its data in one directory. chdb
// allows one session per process at a time.
type chdbSession struct {
	api  *chdbAPI
	conn *chdbConnection
}

// openChdb skips the test when the library is missing, unless CI=true: in
// CI a missing dependency fails, it never silently skips.
func openChdb(t *testing.T) *chdbSession {
	t.Helper()
	path := chdbLibPath()
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, fmt.Errorf("libchdb.so not found at %s (%w): run scripts/install-chdb.sh or set CHDB_LIB_PATH", path, err))
	}
	api, err := loadChdb(path)
	require.NoError(t, err)
	argv := []string{"clickhouse", "--path=" + t.TempDir()}
	cArgv := make([]*byte, len(argv))
	for i, a := range argv {
		b := append([]byte(a), 0)
		cArgv[i] = &b[0]
	}
	conn := api.connect(len(cArgv), cArgv)
	runtime.KeepAlive(cArgv)
	require.NotNil(t, conn, "chdb_connect failed")
	s := &chdbSession{api: api, conn: conn}
	t.Cleanup(func() { api.closeConn(conn) })
	return s
}

// query runs one statement (or several separated by semicolons) and returns
// the output in format.
func (s *chdbSession) query(q, format string) ([]byte, error) {
	if strings.IndexByte(q, 0) >= 0 {
		return nil, errors.New("query contains a NUL byte (C strings cannot carry it)")
	}
	res := s.api.query(s.conn.internal, q, format)
	if res == nil {
		return nil, nil
	}
	defer s.api.destroy(res)
	if msg := s.api.resultError(res); msg != "" {
		return nil, errors.New(strings.TrimSpace(msg))
	}
	n := s.api.resultLength(res)
	buf := s.api.resultBuffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(buf, n)...), nil
}

func (s *chdbSession) exec(t *testing.T, q string) {
	t.Helper()
	_, err := s.query(q, "TSV")
	require.NoError(t, err, "on ClickHouse 26.7 (chdb): %s", q)
}

func (s *chdbSession) scalar(t *testing.T, q string) string {
	t.Helper()
	out, err := s.query(q, "TSVRaw")
	require.NoError(t, err, "on ClickHouse 26.7 (chdb): %s", q)
	return strings.TrimSuffix(string(out), "\n")
}

// sqlLiteral renders v as a ClickHouse literal the way clickhouse-go's
// client-side binding does for the same Go types, except that strings escape
// every byte outside printable ASCII as \xHH: rows carry binary protobuf, and
// the query text crosses a C string boundary.
func sqlLiteral(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return quoteString(v), nil
	case []byte:
		return quoteString(string(v)), nil
	case []string:
		q := make([]string, len(v))
		for i, x := range v {
			q[i] = quoteString(x)
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	case time.Time:
		return fmt.Sprintf("toDateTime('%s', 'UTC')", v.UTC().Format(time.DateTime)), nil
	case uint8, uint16, uint32, uint64, uint, int8, int16, int32, int64, int:
		return fmt.Sprint(v), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	}
	return "", fmt.Errorf("sqlLiteral: unsupported argument type %T", v)
}

func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// bindPositional replaces each ? outside string literals, quoted identifiers
// and comments with the next argument, as clickhouse-go does client-side.
func bindPositional(q string, args ...any) (string, error) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '`' || c == '"':
			j := i + 1
			for ; j < len(q) && q[j] != c; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			if j >= len(q) {
				return "", fmt.Errorf("bind: unterminated %c at offset %d", c, i)
			}
			b.WriteString(q[i : j+1])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i - 1
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '?':
			if n >= len(args) {
				return "", fmt.Errorf("bind: more placeholders than the %d arguments", len(args))
			}
			lit, err := sqlLiteral(args[n])
			if err != nil {
				return "", err
			}
			b.WriteString(lit)
			n++
		default:
			b.WriteByte(c)
		}
	}
	if n != len(args) {
		return "", fmt.Errorf("bind: %d placeholders for %d arguments", n, len(args))
	}
	return b.String(), nil
}

// rowValues lists r's values in the order of columns.
func rowValues(r *Row) []any {
	return []any{
		r.ScopeType, r.ScopeName, r.Namespace, r.Name, r.UID, r.Seq, r.Op, r.LastTime, r.LastNanos,
		r.InvolvedKind, r.InvolvedNamespace, r.InvolvedName, r.InvolvedUID, r.InvolvedAPIVersion,
		r.InvolvedResourceVersion, r.InvolvedFieldPath, r.Reason, r.Message, r.Type,
		r.SourceComponent, r.SourceHost, r.ReportingController, r.ReportingInstance, r.Action,
		r.RelatedKind, r.RelatedNamespace, r.RelatedName, r.Count, r.Rest, r.Lease,
	}
}

// insertSQL renders rows as one INSERT … VALUES with the column list, the
// statement shape 18.16 accepts too.
func insertSQL(table string, rows []Row) (string, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + columnNames() + ") VALUES ")
	for i := range rows {
		vals := rowValues(&rows[i])
		if len(vals) != len(columns) {
			return "", fmt.Errorf("rowValues has %d values for %d columns", len(vals), len(columns))
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range vals {
			lit, err := sqlLiteral(v)
			if err != nil {
				return "", fmt.Errorf("column %s: %w", columns[j].name, err)
			}
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(lit)
		}
		b.WriteByte(')')
	}
	return b.String(), nil
}

// chdbRow is one row of the JSONEachRow wrapper in latest: 64-bit integers
// and binary strings come back as text.
type chdbRow struct {
	ScopeType               string `json:"scope_type"`
	ScopeName               string `json:"scope_name"`
	Namespace               string `json:"namespace"`
	Name                    string `json:"name"`
	UID                     string `json:"uid"`
	Seq                     string `json:"seq"`
	Op                      uint8  `json:"op"`
	LastTS                  int64  `json:"last_ts"`
	LastTSNanos             uint32 `json:"last_ts_nanos"`
	InvolvedKind            string `json:"involved_kind"`
	InvolvedNamespace       string `json:"involved_namespace"`
	InvolvedName            string `json:"involved_name"`
	InvolvedUID             string `json:"involved_uid"`
	InvolvedAPIVersion      string `json:"involved_api_version"`
	InvolvedResourceVersion string `json:"involved_resource_version"`
	InvolvedFieldPath       string `json:"involved_field_path"`
	Reason                  string `json:"reason"`
	Message                 string `json:"message"`
	Type                    string `json:"type"`
	SourceComponent         string `json:"source_component"`
	SourceHost              string `json:"source_host"`
	ReportingController     string `json:"reporting_controller"`
	ReportingInstance       string `json:"reporting_instance"`
	Action                  string `json:"action"`
	RelatedKind             string `json:"related_kind"`
	RelatedNamespace        string `json:"related_namespace"`
	RelatedName             string `json:"related_name"`
	Count                   int32  `json:"count"`
	Rest                    string `json:"rest"`
}

// latest runs Store.latestSQL the way Store.Latest does (same columns, same
// ORDER BY) and decodes the records.
func latest(t *testing.T, db *chdbSession, s *Store, f LatestFilter) []*eventlog.Record {
	t.Helper()
	q, args := s.latestSQL(columnNames(), f)
	return records(t, db, q+" ORDER BY namespace, name, uid", args...)
}

// listPage runs the query Store.List builds for q.
func listPage(t *testing.T, db *chdbSession, s *Store, q ListQuery) []*eventlog.Record {
	t.Helper()
	sql, args, err := s.listSQL(q)
	require.NoError(t, err)
	return records(t, db, sql, args...)
}

// chdbStore is a Store for running SQL on chdb by hand: cfg, the version
// chdb reports (which gates migrations and SQL as on a real server), and the
// database and bookkeeping table Migrate creates before any migration.
func chdbStore(t *testing.T, db *chdbSession, cfg Config) *Store {
	t.Helper()
	v, err := ParseServerVersion(db.scalar(t, "SELECT version()"))
	require.NoError(t, err)
	s := &Store{cfg: cfg, version: v}
	for _, q := range bootstrapStatements(cfg.Database, cfg.schemaOptions()) {
		db.exec(t, q)
	}
	return s
}

// records runs a query returning the events table's columns on 26.7 and
// decodes the records, ordered by namespace, name and uid.
func records(t *testing.T, db *chdbSession, q string, args ...any) []*eventlog.Record {
	t.Helper()
	var recs []*eventlog.Record
	for _, r := range chdbRows(t, db, "namespace, name, uid", q, args...) {
		rec, err := DecodeRow(&r)
		require.NoError(t, err)
		recs = append(recs, rec)
	}
	return recs
}

// chdbRows binds and runs q, a query returning the events table's columns,
// on 26.7 and reads the rows back, ordered by orderBy. chdb speaks no native
// protocol, so the rows travel as JSON and are turned back into Rows here.
func chdbRows(t *testing.T, db *chdbSession, orderBy, q string, args ...any) []Row {
	t.Helper()
	bound, err := bindPositional(q, args...)
	require.NoError(t, err)
	// Test-side wrapper only (26.7 syntax): text-safe encodings for JSON.
	wrapped := "SELECT * REPLACE (toString(seq) AS seq, toUnixTimestamp(last_ts) AS last_ts, hex(rest) AS rest) FROM (" +
		bound + ") ORDER BY " + orderBy
	out, err := db.query(wrapped, "JSONEachRow")
	require.NoError(t, err, "on ClickHouse 26.7 (chdb): %s", bound)
	var rows []Row
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var cr chdbRow
		require.NoError(t, dec.Decode(&cr))
		seq, err := strconv.ParseUint(cr.Seq, 10, 64)
		require.NoError(t, err)
		rest, err := hex.DecodeString(cr.Rest)
		require.NoError(t, err)
		rows = append(rows, Row{
			ScopeType: cr.ScopeType, ScopeName: cr.ScopeName, Namespace: cr.Namespace, Name: cr.Name, UID: cr.UID,
			Seq: seq, Op: cr.Op, LastTime: time.Unix(cr.LastTS, 0).UTC(), LastNanos: cr.LastTSNanos,
			InvolvedKind: cr.InvolvedKind, InvolvedNamespace: cr.InvolvedNamespace, InvolvedName: cr.InvolvedName,
			InvolvedUID: cr.InvolvedUID, InvolvedAPIVersion: cr.InvolvedAPIVersion,
			InvolvedResourceVersion: cr.InvolvedResourceVersion, InvolvedFieldPath: cr.InvolvedFieldPath,
			Reason: cr.Reason, Message: cr.Message, Type: cr.Type,
			SourceComponent: cr.SourceComponent, SourceHost: cr.SourceHost,
			ReportingController: cr.ReportingController, ReportingInstance: cr.ReportingInstance, Action: cr.Action,
			RelatedKind: cr.RelatedKind, RelatedNamespace: cr.RelatedNamespace, RelatedName: cr.RelatedName,
			Count: cr.Count, Rest: rest,
		})
	}
	return rows
}

// countLatest runs the query Store.CountLatest builds.
func countLatest(t *testing.T, db *chdbSession, s *Store, f LatestFilter) uint64 {
	t.Helper()
	q, args := s.latestSQL("seq, op", f)
	bound, err := bindPositional("SELECT count() FROM ("+q+")", args...)
	require.NoError(t, err)
	n, err := strconv.ParseUint(db.scalar(t, bound), 10, 64)
	require.NoError(t, err)
	return n
}

func TestModernClickHouseBinder(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("x", 3600))
	got, err := bindPositional("SELECT '?', `a?` FROM t WHERE a = ? AND b = ? AND c >= ? -- ?\nAND d = ?",
		"it's \\ \x00\xff", uint64(math.MaxUint64), at, []byte{0, 'a'})
	require.NoError(t, err)
	require.Equal(t, "SELECT '?', `a?` FROM t WHERE a = 'it\\'s \\\\ \\x00\\xFF' AND b = 18446744073709551615"+
		" AND c >= toDateTime('2026-11-25 09:00:00', 'UTC') -- ?\nAND d = '\\x00a'", got)
	_, err = bindPositional("a = ? AND b = ?", "x")
	require.Error(t, err)
	_, err = bindPositional("a = ?", "x", "y")
	require.Error(t, err)
}

func TestModernClickHouse(t *testing.T) {
	db := openChdb(t)
	// Migrate's bootstrap, then every migration with Migrate's MinServer
	// gating. Twice: statements must be idempotent, because a migration
	// interrupted half-way runs again from the start.
	s := chdbStore(t, db, Config{Database: "eventpipe", MaxRetentionDays: 30})
	v := s.version
	t.Logf("chdb reports ClickHouse %s", v)
	require.True(t, v.AtLeast(23, 8), "the modern half of the matrix must be 23.8+, got %s", v)
	dbName := quoteIdent(s.cfg.Database)

	var applied []int
	for pass := range 2 {
		for _, m := range Migrations {
			if !m.supported(s.version) {
				continue
			}
			for _, q := range m.Statements(s.cfg.Database, s.schemaOptions()) {
				_, err := db.query(q, "TSV")
				require.NoError(t, err, "pass %d, migration %d (%s) on ClickHouse %s:\n%s", pass+1, m.Version, m.Name, v, q)
			}
			if pass == 0 {
				ins, err := bindPositional("INSERT INTO "+dbName+".schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
					uint32(m.Version), m.Name, time.Now())
				require.NoError(t, err)
				db.exec(t, ins)
				applied = append(applied, m.Version)
			}
		}
	}
	for _, m := range Migrations {
		require.Contains(t, applied, m.Version, "ClickHouse %s must run every migration, extras included", v)
	}
	require.Equal(t, strconv.Itoa(len(Migrations)),
		db.scalar(t, "SELECT count(DISTINCT version) FROM "+dbName+".schema_migrations"))
	// Settings run after the migrations on every Migrate, twice here too.
	for range 2 {
		for _, q := range settingStatements(s.cfg.Database, s.schemaOptions(), s.version) {
			db.exec(t, q)
		}
	}

	// The extras took effect.
	indexes := db.scalar(t, "SELECT arrayStringConcat(groupArray(name || ':' || type), ',') FROM "+
		"(SELECT name, type FROM system.data_skipping_indices WHERE database = 'eventpipe' AND table = 'events' ORDER BY name)")
	require.Equal(t, "idx_involved_name:bloom_filter,idx_reason:set,idx_uid:bloom_filter", indexes)
	create := db.scalar(t, "SHOW CREATE TABLE "+s.table())
	t.Logf("skip indexes: %s\n%s", indexes, create) // the modern schema, for the CI log
	require.Contains(t, create, "TTL last_ts + toIntervalDay(30)", create)
	require.Contains(t, create, "ReplacingMergeTree")
	require.Contains(t, create, "PARTITION BY toYYYYMMDD(last_ts)")
	auditCreate := db.scalar(t, "SHOW CREATE TABLE "+s.auditTable())
	require.Contains(t, auditCreate, "TTL request_ts + toIntervalDay(30)", auditCreate)
	require.Contains(t, auditCreate, "ReplacingMergeTree(seq)")

	// The rows of TestLatestFoldsStatesAndDuplicates.
	now := time.Now().UTC()
	rows := foldingRows(t, now)
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	for _, batch := range [][]Row{rows, rows[2:7]} { // the second: an exact re-insert (writer crash before ack)
		ins, err := insertSQL(s.table(), batch)
		require.NoError(t, err)
		db.exec(t, ins)
	}
	require.Equal(t, strconv.Itoa(len(rows)+5), db.scalar(t, "SELECT count() FROM "+s.table()), "every state is stored")

	// Binary rest survives the round trip through SQL literals.
	got := latest(t, db, s, LatestFilter{Scope: &alpha})
	require.Len(t, got, 4, "e0, e2, e3, e4: e1 is deleted, duplicates fold")
	require.Equal(t, "e0", got[0].Event.Name)
	require.EqualValues(t, 4, got[0].Event.Count, "latest state wins")
	require.Equal(t, "9", got[0].Event.ResourceVersion, "resourceVersion is the sequence")
	require.Equal(t, alpha, got[0].Key.Scope)
	require.True(t, got[0].Event.FirstTimestamp.Time.Equal(now.Add(-time.Minute-time.Hour+4*time.Second).Truncate(time.Second)),
		"fields kept only in rest decode")
	for i, name := range []string{"e0", "e2", "e3", "e4"} {
		require.Equal(t, name, got[i].Event.Name, "ordered by namespace, name")
	}

	atSeq := latest(t, db, s, LatestFilter{Scope: &alpha, AtSeq: 7})
	require.Len(t, atSeq, 5, "as of seq 7 the delete (seq 10) has not happened")
	require.EqualValues(t, 2, atSeq[0].Event.Count)

	prod, dev := "prod", "dev"
	require.Len(t, latest(t, db, s, LatestFilter{Scope: &alpha, Namespace: &prod}), 4)

	// List's paged query (keys first, then the page's rows) on 26.7: pages
	// of 3 with a selector cover exactly the unpaged answer.
	var paged []string
	var after *Cursor
	for range 10 {
		page := listPage(t, db, s, ListQuery{LatestFilter: LatestFilter{Scope: &alpha}, After: after, Limit: 3,
			Conds: []FieldCond{{Field: "type", Value: corev1.EventTypeWarning}}})
		for _, r := range page {
			paged = append(paged, r.Key.Namespace+"/"+r.Key.Name)
		}
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1].Key
		after = &Cursor{Namespace: last.Namespace, Name: last.Name, Scope: last.Scope}
	}
	var whole []string
	for _, r := range listPage(t, db, s, ListQuery{LatestFilter: LatestFilter{Scope: &alpha},
		Conds: []FieldCond{{Field: "type", Value: corev1.EventTypeWarning}}}) {
		whole = append(whole, r.Key.Namespace+"/"+r.Key.Name)
	}
	require.NotEmpty(t, whole)
	require.Equal(t, whole, paged, "pages on ClickHouse 26.7")
	require.Empty(t, latest(t, db, s, LatestFilter{Scope: &alpha, Namespace: &dev}))

	require.EqualValues(t, 5, countLatest(t, db, s, LatestFilter{}), "all scopes")
	require.EqualValues(t, 1, countLatest(t, db, s, LatestFilter{Scope: &beta}))
	require.EqualValues(t, 0, countLatest(t, db, s, LatestFilter{Scope: &alpha, Since: now.Add(-30 * time.Minute)}),
		"window excludes older events")
	require.EqualValues(t, 4, countLatest(t, db, s, LatestFilter{Scope: &alpha, Since: now.Add(-2 * time.Hour)}),
		"window includes them")

	// After a merge, ReplacingMergeTree has folded the exact duplicates; the
	// answers do not change.
	db.exec(t, "OPTIMIZE TABLE "+s.table()+" FINAL")
	require.Equal(t, strconv.Itoa(len(rows)), db.scalar(t, "SELECT count() FROM "+s.table()), "exact duplicates folded on merge")
	require.Len(t, latest(t, db, s, LatestFilter{Scope: &alpha}), 4)
	require.EqualValues(t, 5, countLatest(t, db, s, LatestFilter{}))
}

// foldingRows are the states both halves of the version matrix fold to
// their latest (TestLatestFoldsStatesAndDuplicates, TestModernClickHouse):
// five events of tenant alpha, an event of tenant beta with the name of
// alpha's first, three updates of alpha's first and a delete of its second,
// with sequences 1 to 10 in that order, each observed relative to now.
func foldingRows(t testing.TB, now time.Time) []Row {
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	var rows []Row
	seq := uint64(0)
	add := func(sc scope.Scope, op eventlog.Op, ev *corev1.Event) {
		seq++
		rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: seq}
		row, err := EncodeRow(rec, now)
		require.NoError(t, err)
		rows = append(rows, row)
	}
	for i := range 5 {
		add(alpha, eventlog.OpCreate, eventtest.BackOff("prod", fmt.Sprintf("e%d", i), 1, now.Add(-time.Hour)))
	}
	add(beta, eventlog.OpCreate, eventtest.BackOff("prod", "e0", 1, now.Add(-time.Hour))) // same name, other tenant
	for c := int32(2); c <= 4; c++ {
		add(alpha, eventlog.OpUpdate, eventtest.BackOff("prod", "e0", c, now.Add(-time.Hour+time.Duration(c)*time.Second)))
	}
	add(alpha, eventlog.OpDelete, eventtest.BackOff("prod", "e1", 1, now.Add(-time.Hour)))
	return rows
}
