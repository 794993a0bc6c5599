package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Cutoff is one tenant's retention line: its rows last observed before
// Before are past it.
type Cutoff struct {
	Scope  scope.Scope
	Before time.Time
}

// cond returns the SQL condition for the rows past c and its arguments.
// last_ts holds whole seconds and last_ts_nanos the rest, so a line inside a
// second compares the nanoseconds too: exactly the rows observed strictly
// before the line match. Times travel as Unix seconds, which both 18.16 and
// current servers read the same way whatever their time zone.
func (c Cutoff) cond() (string, []any) {
	sec := c.Before.Unix()
	nanos := uint32(c.Before.Nanosecond())
	if sec < 0 {
		sec, nanos = 0, 0
	}
	return "(scope_type = ? AND scope_name = ? AND (last_ts < toDateTime(?) OR (last_ts = toDateTime(?) AND last_ts_nanos < ?)))",
		[]any{c.Scope.Type, c.Scope.Name, uint64(sec), uint64(sec), nanos}
}

func cutoffsSQL(cs []Cutoff) (string, []any) {
	var conds []string
	var args []any
	for _, c := range cs {
		q, a := c.cond()
		conds = append(conds, q)
		args = append(args, a...)
	}
	return strings.Join(conds, " OR "), args
}

// OldestByScope returns, for every scope with rows last observed before
// before, the oldest such observation. The retention worker passes its
// newest line (now minus the shortest retention), so only scopes that may
// have something to delete come back, and only old partitions are read.
func (s *Store) OldestByScope(ctx context.Context, before time.Time) (map[scope.Scope]time.Time, error) {
	q, args := s.oldestByScopeSQL(before)
	out := map[scope.Scope]time.Time{}
	err := s.eachRow(ctx, q, args, func(rows driver.Rows) error {
		var sc scope.Scope
		var t time.Time
		if err := rows.Scan(&sc.Type, &sc.Name, &t); err != nil {
			return err
		}
		out[sc] = t.UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find old rows: %w", err)
	}
	return out, nil
}

func (s *Store) oldestByScopeSQL(before time.Time) (string, []any) {
	// Whole seconds up to and including before's second: a row in that
	// second may still be before the line; the caller compares exactly.
	sec := before.Unix()
	if sec < 0 {
		sec = 0
	}
	return "SELECT scope_type, scope_name, min(last_ts) FROM " + s.table() +
		" WHERE last_ts <= toDateTime(?) GROUP BY scope_type, scope_name ORDER BY scope_type, scope_name", []any{uint64(sec)}
}

// CountPastCutoffs counts, per scope, the rows past each cutoff.
func (s *Store) CountPastCutoffs(ctx context.Context, cs []Cutoff) (map[scope.Scope]uint64, error) {
	out := map[scope.Scope]uint64{}
	if len(cs) == 0 {
		return out, nil
	}
	q, args := s.countPastCutoffsSQL(cs)
	err := s.eachRow(ctx, q, args, func(rows driver.Rows) error {
		var sc scope.Scope
		var n uint64
		if err := rows.Scan(&sc.Type, &sc.Name, &n); err != nil {
			return err
		}
		out[sc] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count rows past retention: %w", err)
	}
	return out, nil
}

func (s *Store) countPastCutoffsSQL(cs []Cutoff) (string, []any) {
	where, args := cutoffsSQL(cs)
	return "SELECT scope_type, scope_name, count() FROM " + s.table() + " WHERE " + where +
		" GROUP BY scope_type, scope_name ORDER BY scope_type, scope_name", args
}

// DeletePastCutoffs starts one mutation that deletes every row past its
// scope's cutoff. Mutations are asynchronous (18.16 has no mutations_sync):
// it returns once the mutation is queued; WaitMutations waits for it. One
// mutation for all scopes, not one per scope, because a mutation rewrites
// every part it touches: one rewrite per run instead of one per tenant.
func (s *Store) DeletePastCutoffs(ctx context.Context, cs []Cutoff) error {
	if len(cs) == 0 {
		return nil
	}
	q, args := s.deletePastCutoffsSQL(cs)
	if err := s.conn.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("delete rows past retention: %w", err)
	}
	return nil
}

func (s *Store) deletePastCutoffsSQL(cs []Cutoff) (string, []any) {
	where, args := cutoffsSQL(cs)
	return "ALTER TABLE " + s.table() + " DELETE WHERE " + where, args
}

// PendingMutations counts the events table's mutations that are not done.
func (s *Store) PendingMutations(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx,
		"SELECT count() FROM system.mutations WHERE database = ? AND table = 'events' AND is_done = 0",
		s.cfg.Database).Scan(&n); err != nil {
		return 0, fmt.Errorf("read pending mutations: %w", err)
	}
	return n, nil
}

// WaitMutations polls every interval until the events table has no pending
// mutation, or ctx ends.
func (s *Store) WaitMutations(ctx context.Context, interval time.Duration) error {
	for {
		n, err := s.PendingMutations(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %d pending mutations: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// DropPartition drops a whole day partition (every tenant's rows of that
// day): the cheap way to remove what is past every tenant's retention.
func (s *Store) DropPartition(ctx context.Context, id string) error {
	q, err := s.dropPartitionSQL(id)
	if err != nil {
		return err
	}
	if err := s.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop partition %s: %w", id, err)
	}
	return nil
}

func (s *Store) dropPartitionSQL(id string) (string, error) {
	day, err := partitionDay(id)
	if err != nil {
		return "", err
	}
	// The partition expression's value, the form 18.16 documents for
	// DROP PARTITION; partitionDay has checked it is eight digits.
	return fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", s.table(), day), nil
}
