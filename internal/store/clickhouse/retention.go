package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// RetentionTable is one table that tier retention applies to: day
// partitions of a time column (whole seconds, DateTime) and a nanoseconds
// column beside it, and scope_type and scope_name columns. Its methods are
// what the retention worker (internal/tiers/retention) needs; they are safe
// for concurrent use.
type RetentionTable struct {
	s         *Store
	name      string // the table in the store's database
	ts, nanos string // the columns of each row's time; partitions are its days
}

// Name returns the table's name.
func (t *RetentionTable) Name() string { return t.name }

func (t *RetentionTable) table() string {
	return quoteIdent(t.s.cfg.Database) + "." + quoteIdent(t.name)
}

// dataTable is the table (with its ON CLUSTER clause) that retention's
// ALTERs name: the table itself on one server, its replicated local tables
// on every shard in cluster mode (an ALTER of a Distributed table changes
// nothing stored). A replicated table replicates the partition drop or the
// delete mutation to the shard's other replica.
func (t *RetentionTable) dataTable() string {
	o := t.s.schemaOptions()
	return o.dataTable(t.s.cfg.Database, t.name) + o.onCluster()
}

// eventsRetention is the events table, by each state's last observation.
func (s *Store) eventsRetention() *RetentionTable {
	return &RetentionTable{s: s, name: "events", ts: "last_ts", nanos: "last_ts_nanos"}
}

// auditRetention is the audit_records table, by each record's
// requestReceivedTimestamp.
func (s *Store) auditRetention() *RetentionTable {
	return &RetentionTable{s: s, name: auditTableName, ts: "request_ts", nanos: "request_ts_nanos"}
}

// RetentionTables returns every table tier retention applies to, events
// first.
func (s *Store) RetentionTables() []*RetentionTable {
	return []*RetentionTable{s.eventsRetention(), s.auditRetention()}
}

// The events table's retention, as the Store's own methods (what the
// events-only callers and tests use).

// OldestByScope is RetentionTable.OldestByScope on the events table.
func (s *Store) OldestByScope(ctx context.Context, before time.Time) (map[scope.Scope]time.Time, error) {
	return s.eventsRetention().OldestByScope(ctx, before)
}

// CountPastCutoffs is RetentionTable.CountPastCutoffs on the events table.
func (s *Store) CountPastCutoffs(ctx context.Context, cs []Cutoff) (map[scope.Scope]uint64, error) {
	return s.eventsRetention().CountPastCutoffs(ctx, cs)
}

// DeletePastCutoffs is RetentionTable.DeletePastCutoffs on the events table.
func (s *Store) DeletePastCutoffs(ctx context.Context, cs []Cutoff) error {
	return s.eventsRetention().DeletePastCutoffs(ctx, cs)
}

// PendingMutations is RetentionTable.PendingMutations on the events table.
func (s *Store) PendingMutations(ctx context.Context) (uint64, error) {
	return s.eventsRetention().PendingMutations(ctx)
}

// WaitMutations is RetentionTable.WaitMutations on the events table.
func (s *Store) WaitMutations(ctx context.Context, interval time.Duration) error {
	return s.eventsRetention().WaitMutations(ctx, interval)
}

// DropPartition is RetentionTable.DropPartition on the events table.
func (s *Store) DropPartition(ctx context.Context, id string) error {
	return s.eventsRetention().DropPartition(ctx, id)
}

func (s *Store) oldestByScopeSQL(before time.Time) (string, []any) {
	return s.eventsRetention().oldestByScopeSQL(before)
}

func (s *Store) countPastCutoffsSQL(cs []Cutoff) (string, []any) {
	return s.eventsRetention().countPastCutoffsSQL(cs)
}

func (s *Store) deletePastCutoffsSQL(cs []Cutoff) (string, []any) {
	return s.eventsRetention().deletePastCutoffsSQL(cs)
}

func (s *Store) dropPartitionSQL(id string) (string, error) {
	return s.eventsRetention().dropPartitionSQL(id)
}

// Cutoff is one tenant's retention line: its rows last observed before
// Before are past it.
type Cutoff struct {
	Scope  scope.Scope
	Before time.Time
}

// cond returns the SQL condition for the rows of t past c and its
// arguments. t's time column holds whole seconds and its nanos column the
// rest, so a line inside a second compares the nanoseconds too: exactly the
// rows observed strictly before the line match. Times travel as Unix
// seconds, which both 18.16 and current servers read the same way whatever
// their time zone.
func (c Cutoff) cond(t *RetentionTable) (string, []any) {
	sec := c.Before.Unix()
	nanos := uint32(c.Before.Nanosecond())
	if sec < 0 {
		sec, nanos = 0, 0
	}
	return "(scope_type = ? AND scope_name = ? AND (" + t.ts + " < toDateTime(?) OR (" + t.ts + " = toDateTime(?) AND " + t.nanos + " < ?)))",
		[]any{c.Scope.Type, c.Scope.Name, uint64(sec), uint64(sec), nanos}
}

func (t *RetentionTable) cutoffsSQL(cs []Cutoff) (string, []any) {
	var conds []string
	var args []any
	for _, c := range cs {
		q, a := c.cond(t)
		conds = append(conds, q)
		args = append(args, a...)
	}
	return strings.Join(conds, " OR "), args
}

// OldestByScope returns, for every scope with rows observed before
// before, the oldest such observation. The retention worker passes its
// newest line (now minus the shortest retention), so only scopes that may
// have something to delete come back, and only old partitions are read.
func (t *RetentionTable) OldestByScope(ctx context.Context, before time.Time) (map[scope.Scope]time.Time, error) {
	q, args := t.oldestByScopeSQL(before)
	out := map[scope.Scope]time.Time{}
	err := t.s.eachRow(ctx, q, args, func(rows driver.Rows) error {
		var sc scope.Scope
		var at time.Time
		if err := rows.Scan(&sc.Type, &sc.Name, &at); err != nil {
			return err
		}
		out[sc] = at.UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find old rows in %s: %w", t.name, err)
	}
	return out, nil
}

func (t *RetentionTable) oldestByScopeSQL(before time.Time) (string, []any) {
	// Whole seconds up to and including before's second: a row in that
	// second may still be before the line; the caller compares exactly.
	sec := before.Unix()
	if sec < 0 {
		sec = 0
	}
	return "SELECT scope_type, scope_name, min(" + t.ts + ") FROM " + t.table() +
		" WHERE " + t.ts + " <= toDateTime(?) GROUP BY scope_type, scope_name ORDER BY scope_type, scope_name", []any{uint64(sec)}
}

// CountPastCutoffs counts, per scope, the rows past each cutoff.
func (t *RetentionTable) CountPastCutoffs(ctx context.Context, cs []Cutoff) (map[scope.Scope]uint64, error) {
	out := map[scope.Scope]uint64{}
	if len(cs) == 0 {
		return out, nil
	}
	q, args := t.countPastCutoffsSQL(cs)
	err := t.s.eachRow(ctx, q, args, func(rows driver.Rows) error {
		var sc scope.Scope
		var n uint64
		if err := rows.Scan(&sc.Type, &sc.Name, &n); err != nil {
			return err
		}
		out[sc] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count rows of %s past retention: %w", t.name, err)
	}
	return out, nil
}

func (t *RetentionTable) countPastCutoffsSQL(cs []Cutoff) (string, []any) {
	where, args := t.cutoffsSQL(cs)
	return "SELECT scope_type, scope_name, count() FROM " + t.table() + " WHERE " + where +
		" GROUP BY scope_type, scope_name ORDER BY scope_type, scope_name", args
}

// DeletePastCutoffs starts one mutation that deletes every row past its
// scope's cutoff. Mutations are asynchronous (18.16 has no mutations_sync):
// it returns once the mutation is queued; WaitMutations waits for it. One
// mutation for all scopes, not one per scope, because a mutation rewrites
// every part it touches: one rewrite per run instead of one per tenant.
func (t *RetentionTable) DeletePastCutoffs(ctx context.Context, cs []Cutoff) error {
	if len(cs) == 0 {
		return nil
	}
	q, args := t.deletePastCutoffsSQL(cs)
	if err := t.s.conn.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("delete rows of %s past retention: %w", t.name, err)
	}
	return nil
}

func (t *RetentionTable) deletePastCutoffsSQL(cs []Cutoff) (string, []any) {
	where, args := t.cutoffsSQL(cs)
	return "ALTER TABLE " + t.dataTable() + " DELETE WHERE " + where, args
}

// PendingMutations counts the table's mutations that are not done.
func (t *RetentionTable) PendingMutations(ctx context.Context) (uint64, error) {
	var n uint64
	if err := t.s.conn.QueryRow(ctx,
		"SELECT count() FROM "+t.s.systemTable("mutations")+" WHERE database = ? AND table = ? AND is_done = 0",
		t.s.cfg.Database, t.s.dataTableName(t.name)).Scan(&n); err != nil {
		return 0, fmt.Errorf("read pending mutations of %s: %w", t.name, err)
	}
	return n, nil
}

// WaitMutations polls every interval until the table has no pending
// mutation, or ctx ends.
func (t *RetentionTable) WaitMutations(ctx context.Context, interval time.Duration) error {
	for {
		n, err := t.PendingMutations(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		tm := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			tm.Stop()
			return fmt.Errorf("wait for %d pending mutations of %s: %w", n, t.name, ctx.Err())
		case <-tm.C:
		}
	}
}

// DropPartition drops a whole day partition (every tenant's rows of that
// day): the cheap way to remove what is past every tenant's retention.
func (t *RetentionTable) DropPartition(ctx context.Context, id string) error {
	q, err := t.dropPartitionSQL(id)
	if err != nil {
		return err
	}
	if err := t.s.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop partition %s of %s: %w", id, t.name, err)
	}
	return nil
}

func (t *RetentionTable) dropPartitionSQL(id string) (string, error) {
	day, err := partitionDay(id)
	if err != nil {
		return "", err
	}
	// The partition expression's value, the form 18.16 documents for
	// DROP PARTITION; partitionDay has checked it is eight digits.
	return fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", t.dataTable(), day), nil
}
