// Package history fills an events table with a long, large history of
// realistic events for the read benchmarks (EventQuery, facets, the UI's
// first view), fast enough for 100 M states on the project's machine.
//
// Running the generator and the writer for 100 M states would take hours,
// so the history is made inside ClickHouse from templates: the generator
// (internal/generator) simulates a few clusters for a while, its states
// become rows by the store's own encoding into a scratch table, and
// INSERT … SELECT copies that corpus over and over along the time axis.
// Each copy gets its own tenant, event names, object names (also inside
// messages), uids and times, so rows compress like the generator's events
// do, not like repeated constants; copies keep the corpus' updates and
// deletes, so an event has several states as in a real cluster.
package history

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/generator"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Version names the shape of what Fill writes; a kept dataset made by
// another version is regenerated.
const Version = "generator-templates-v1"

// Options say what history to write.
type Options struct {
	// Events is about how many states to write (rounded to whole copies of
	// the corpus).
	Events int64
	// Days is how far back the history reaches from Now.
	Days int
	// Tenants is how many tenants the states are spread over; their names
	// come from TenantName.
	Tenants    int
	TenantName func(i int) string
	Now        time.Time
	// Corpus is how many generator states one copy holds (default
	// 100,000): more makes copies differ more, at more setup time.
	Corpus int
}

// Result describes a written history.
type Result struct {
	Rows, BytesOnDisk uint64
	// MaxSeq is the newest state's sequence: the watermark to serve at.
	MaxSeq uint64
	Took   time.Duration
}

// BytesPerEvent is the disk cost of one state.
func (r Result) BytesPerEvent() float64 { return float64(r.BytesOnDisk) / float64(max(r.Rows, 1)) }

// templateTenants is how many clusters the corpus simulates; copy c of
// template tenant k belongs to tenant (k + templateTenants*c) mod Tenants.
const templateTenants = 10

// Reusable reports whether s already holds a history of o's size made by
// this Version whose newest day is still inside the window, so a kept
// benchmark directory can skip the fill.
func Reusable(ctx context.Context, s *chstore.Store, o Options) bool {
	var version string
	var events uint64
	var made time.Time
	q := "SELECT version, events, made FROM " + infoTable(s) + " ORDER BY made DESC LIMIT 1"
	if err := s.Conn().QueryRow(ctx, q).Scan(&version, &events, &made); err != nil {
		return false
	}
	return version == Version && int64(events) >= o.Events*9/10 && o.Now.Sub(made) < 6*time.Hour
}

// Describe reads what s holds (after Fill, or for a reused dataset).
func Describe(ctx context.Context, s *chstore.Store) (Result, error) {
	var r Result
	if err := s.Conn().QueryRow(ctx, "SELECT count(), max(seq) FROM "+eventsTable(s)).Scan(&r.Rows, &r.MaxSeq); err != nil {
		return r, fmt.Errorf("describe history: %w", err)
	}
	_, bytes, err := s.DiskUsage(ctx)
	if err != nil {
		return r, fmt.Errorf("describe history: %w", err)
	}
	r.BytesOnDisk = bytes
	return r, nil
}

func eventsTable(s *chstore.Store) string   { return quote(s.Database()) + ".events" }
func templateTable(s *chstore.Store) string { return quote(s.Database()) + ".history_templates" }
func infoTable(s *chstore.Store) string     { return quote(s.Database()) + ".history_info" }
func quote(ident string) string             { return "`" + strings.ReplaceAll(ident, "`", "``") + "`" }

func (o Options) corpus() int {
	if o.Corpus > 0 {
		return o.Corpus
	}
	return 100_000
}

func (o Options) span() time.Duration { return time.Duration(o.Days) * 24 * time.Hour }
func (o Options) start() time.Time    { return o.Now.Add(-o.span()).Truncate(time.Second) }
func (o Options) copies() int64       { return max((o.Events+int64(o.corpus())-1)/int64(o.corpus()), 1) }

// copySeconds is the time one copy of the corpus covers.
func (o Options) copySeconds() int64 { return int64(o.span()/time.Second) / o.copies() }

func (o Options) validate() error {
	switch {
	case o.Events <= 0 || o.Days <= 0 || o.Tenants <= 0 || o.TenantName == nil:
		return fmt.Errorf("history: want Events, Days, Tenants and TenantName, got %+v", o)
	case o.copySeconds() < 1:
		return fmt.Errorf("history: %d copies of the corpus do not fit in %d days", o.copies(), o.Days)
	}
	return nil
}

// Fill replaces the events in s with a history as o describes.
func Fill(ctx context.Context, s *chstore.Store, o Options) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	t0 := time.Now()
	for _, q := range []string{
		"TRUNCATE TABLE " + eventsTable(s),
		"DROP TABLE IF EXISTS " + templateTable(s),
		"CREATE TABLE " + templateTable(s) + " AS " + eventsTable(s) + " ENGINE = MergeTree ORDER BY seq",
		"CREATE TABLE IF NOT EXISTS " + infoTable(s) + " (version String, events UInt64, made DateTime) ENGINE = MergeTree ORDER BY made",
		"TRUNCATE TABLE " + infoTable(s),
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			return Result{}, fmt.Errorf("history: %s: %w", q, err)
		}
	}
	cols, err := columns(ctx, s)
	if err != nil {
		return Result{}, err
	}
	span, err := writeCorpus(ctx, s, o, cols)
	if err != nil {
		return Result{}, err
	}
	// Copies in chunks, so that one INSERT stays around a million rows.
	perInsert := max(int64(1_000_000/o.corpus()), 1)
	for c0 := int64(0); c0 < o.copies(); c0 += perInsert {
		if err := s.Conn().Exec(ctx, copySQL(s.Database(), o, cols, span, c0, min(c0+perInsert, o.copies()))); err != nil {
			return Result{}, fmt.Errorf("history: copies from %d: %w", c0, err)
		}
	}
	if err := s.Conn().Exec(ctx, "DROP TABLE "+templateTable(s)); err != nil {
		return Result{}, fmt.Errorf("history: %w", err)
	}
	// Days of history long past are fully merged in a running
	// installation; the copies left several parts per day.
	if err := s.Conn().Exec(ctx, "OPTIMIZE TABLE "+eventsTable(s)+" FINAL"); err != nil {
		return Result{}, fmt.Errorf("history: merge: %w", err)
	}
	r, err := Describe(ctx, s)
	if err != nil {
		return r, err
	}
	if err := s.Conn().Exec(ctx, fmt.Sprintf("INSERT INTO %s (version, events, made) SELECT '%s', %d, toDateTime(%d)",
		infoTable(s), Version, r.Rows, o.Now.Unix())); err != nil {
		return r, fmt.Errorf("history: %w", err)
	}
	r.Took = time.Since(t0)
	return r, nil
}

// corpusSink turns generator states into rows, sequence 1, 2, … in order.
type corpusSink struct {
	index map[scope.Scope]int
	rows  []chstore.Row
}

func (c *corpusSink) Write(_ context.Context, op eventlog.Op, sc scope.Scope, ev *corev1.Event) error {
	rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: uint64(len(c.rows) + 1)}
	row, err := chstore.EncodeRow(rec, time.Time{})
	if err != nil {
		return err
	}
	// The template tenant's index rides in the scope name; copies replace
	// it.
	row.ScopeName = fmt.Sprint(c.index[sc])
	c.rows = append(c.rows, row)
	return nil
}

// writeCorpus simulates the template clusters over one copy's time span
// and stores their states; it returns the span's start.
func writeCorpus(ctx context.Context, s *chstore.Store, o Options, cols []string) (time.Time, error) {
	var tenants []scope.Scope
	sink := &corpusSink{index: map[scope.Scope]int{}}
	for k := range templateTenants {
		sc := scope.Scope{Type: scope.TypeProject, Name: fmt.Sprintf("template-%d", k)}
		tenants = append(tenants, sc)
		sink.index[sc] = k
	}
	from := time.Unix(1_700_000_000, 0).UTC()
	to := from.Add(time.Duration(o.copySeconds()) * time.Second)
	g, err := generator.New(generator.Config{Tenants: tenants, Namespaces: 5, Seed: 42, Now: func() time.Time { return from }})
	if err != nil {
		return time.Time{}, err
	}
	if err := g.Backfill(ctx, sink, from, to, o.corpus()); err != nil {
		return time.Time{}, err
	}
	// Through the store's own insert into the (empty) events table, then
	// moved aside.
	for i := 0; i < len(sink.rows); i += 50_000 {
		if err := s.Insert(ctx, sink.rows[i:min(i+50_000, len(sink.rows))]); err != nil {
			return time.Time{}, fmt.Errorf("history: store the corpus: %w", err)
		}
	}
	// The column list also in INSERT … SELECT: without it, clickhouse-go
	// waits for a batch that never comes.
	list := strings.Join(cols, ", ")
	move := "INSERT INTO " + templateTable(s) + " (" + list + ") SELECT " + list + " FROM " + eventsTable(s)
	for _, q := range []string{move, "TRUNCATE TABLE " + eventsTable(s)} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			return time.Time{}, fmt.Errorf("history: %s: %w", q, err)
		}
	}
	return from, nil
}

// copySQL writes copies [c0, c1) of the corpus: copy c is shifted to start
// c copy-spans after the history's start, belongs to tenant (k + 10c) mod
// Tenants, and renames its events, objects and uids so that no two copies
// share an identity.
func copySQL(db string, o Options, cols []string, corpusStart time.Time, c0, c1 int64) string {
	var names []string
	for i := range o.Tenants {
		names = append(names, "'"+strings.ReplaceAll(o.TenantName(i), "'", "\\'")+"'")
	}
	suffix := fmt.Sprintf("toString(intDiv(%d * c, %d))", templateTenants, o.Tenants)
	// Per-copy rename of an object or event name: the tenant already
	// differs between neighbouring copies; the suffix tells apart the
	// copies that land in the same tenant.
	renamed := func(col string) string {
		return fmt.Sprintf("if(%[1]s = '', '', concat(%[1]s, '-', %[2]s))", col, suffix)
	}
	// A uid's first 8 hex digits come from the copy and the uid, so each
	// copy of an object or event has its own, as random as a real one,
	// shared by all its states.
	uid := func(col string) string {
		return fmt.Sprintf("if(%[1]s = '', '', concat(lower(hex(intHash32(cityHash64(%[1]s) + c))), substring(%[1]s, 9)))", col)
	}
	tenant := fmt.Sprintf("(k + %d * c) %% %d", templateTenants, o.Tenants)
	sel := map[string]string{
		"scope_type":    "'Project'",
		"scope_name":    fmt.Sprintf("[%s][%s + 1]", strings.Join(names, ","), tenant),
		"name":          renamed("name"),
		"uid":           uid("uid"),
		"seq":           fmt.Sprintf("seq + c * %d", o.corpus()),
		"last_ts":       fmt.Sprintf("toDateTime(%d + c * %d + (toUInt32(last_ts) - %d))", o.start().Unix(), o.copySeconds(), corpusStart.Unix()),
		"involved_name": renamed("involved_name"),
		"involved_uid":  uid("involved_uid"),
		// 18.16's replaceAll wants a constant pattern: the first mention
		// is renamed by position.
		"message":      fmt.Sprintf("if(involved_name = '' OR position(message, involved_name) = 0, message, concat(substring(message, 1, position(message, involved_name) - 1), %s, substring(message, position(message, involved_name) + length(involved_name))))", renamed("involved_name")),
		"related_name": renamed("related_name"),
	}
	exprs := make([]string, len(cols))
	for i, col := range cols {
		if e, ok := sel[col]; ok {
			exprs[i] = e
		} else {
			exprs[i] = col
		}
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM (SELECT *, toUInt32(scope_name) AS k FROM %s) ARRAY JOIN arrayMap(x -> x + %d, range(%d)) AS c",
		quote(db)+".events", strings.Join(cols, ", "), strings.Join(exprs, ", "), quote(db)+".history_templates", c0, c1-c0)
}

// columns lists the events table's columns in order.
func columns(ctx context.Context, s *chstore.Store) ([]string, error) {
	rows, err := s.Conn().Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = 'events'", s.Database())
	if err != nil {
		return nil, fmt.Errorf("history: columns: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("history: columns: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
