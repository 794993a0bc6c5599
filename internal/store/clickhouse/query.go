package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// LatestFilter selects events by their latest state.
type LatestFilter struct {
	// Scope limits the read to one tenant; nil reads every scope (platform
	// readers only: the API layer decides who may pass nil).
	Scope *scope.Scope
	// Namespace, when not nil, limits the read to one namespace.
	Namespace *string
	// Since keeps events last observed at or after it.
	Since time.Time
	// AtSeq answers as of this sequence (the watermark): states above it are
	// ignored, as if not yet written. Zero means no bound.
	AtSeq uint64
	// Name, when not nil, limits the read to one name.
	Name *string
}

// latestSQL returns the query for the latest state of every event matching
// f, deleted events excluded, and its arguments.
//
// Every state at or after Since is a candidate: an event's states move
// forward in time, so its latest state is never older than an earlier one.
// An event is identified by its scope, namespace and name, as Kubernetes
// identifies an object: a name deleted and created again is one key whose
// latest state wins. LIMIT 1 BY keeps the highest sequence per key, which
// also folds exact duplicates (same sequence) from at-least-once delivery.
func (s *Store) latestSQL(cols string, f LatestFilter) (string, []any) {
	return s.latestSQLWhere(cols, f, nil, nil)
}

// latestSQLWhere is latestSQL with extra conditions (and their arguments)
// on the states read before the latest one per key is picked; they must be
// on key columns, which every state of a key shares.
func (s *Store) latestSQLWhere(cols string, f LatestFilter, extra []string, extraArgs []any) (string, []any) {
	where, args := f.conditions()
	where = append(where, extra...)
	args = append(args, extraArgs...)
	q := "SELECT " + cols + " FROM " + s.table()
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT 1 BY scope_type, scope_name, namespace, name"
	return "SELECT " + cols + " FROM (" + q + ") WHERE " + liveOp, args
}

// liveOp selects the states of events still alive in Kubernetes' view:
// neither deleted nor expired.
var liveOp = fmt.Sprintf("op NOT IN (%d, %d)", uint8(eventlog.OpDelete), uint8(eventlog.OpExpire))

// conditions are f's filters on stored states, for any table with the
// columns scope_type, scope_name, namespace, name, last_ts and seq.
func (f LatestFilter) conditions() (where []string, args []any) {
	if f.Scope != nil {
		where = append(where, "scope_type = ?", "scope_name = ?")
		args = append(args, f.Scope.Type, f.Scope.Name)
	}
	if f.Namespace != nil {
		where = append(where, "namespace = ?")
		args = append(args, *f.Namespace)
	}
	if f.Name != nil {
		where = append(where, "name = ?")
		args = append(args, *f.Name)
	}
	if !f.Since.IsZero() {
		where = append(where, "last_ts >= ?")
		args = append(args, f.Since.UTC().Truncate(time.Second))
	}
	if f.AtSeq > 0 {
		where = append(where, "seq <= ?")
		args = append(args, f.AtSeq)
	}
	return where, args
}

// fieldConditions turns conds into SQL conditions over the columns named by
// columns (a field vocabulary: FieldColumns, ActivityFieldColumns); a field
// it does not name is an error for what ("list events").
func fieldConditions(columns map[string]string, conds []FieldCond, what string) ([]string, []any, error) {
	var where []string
	var args []any
	for _, c := range conds {
		col, ok := columns[c.Field]
		if !ok {
			return nil, nil, fmt.Errorf("%s: field %q cannot be filtered", what, c.Field)
		}
		op := " = ?"
		if c.Not {
			op = " != ?"
		}
		where = append(where, col+op)
		args = append(args, c.Value)
	}
	return where, args, nil
}

// Latest returns the latest state of every event matching f, deleted events
// excluded, ordered by namespace and name.
func (s *Store) Latest(ctx context.Context, f LatestFilter) ([]*eventlog.Record, error) {
	return s.List(ctx, ListQuery{LatestFilter: f})
}

// CountLatest counts the events matching f, each once, deleted ones excluded.
func (s *Store) CountLatest(ctx context.Context, f LatestFilter) (uint64, error) {
	q, args := s.latestSQL("seq, op", f)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM ("+q+")", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count latest events: %w", err)
	}
	return n, nil
}

// NewestState returns the highest stream sequence in the events table and
// the subject of the event it is a state of; 0 and "" when the table is
// empty. It is how far, and on what, the EVENTS stream the index was built
// from reached. It reads the whole seq column; the writer asks once, when
// it starts without any watermark.
func (s *Store) NewestState(ctx context.Context) (seq uint64, subject string, err error) {
	var st, sn, ns, name string
	err = s.conn.QueryRow(ctx, "SELECT seq, scope_type, scope_name, namespace, name FROM "+s.table()+" ORDER BY seq DESC LIMIT 1").
		Scan(&seq, &st, &sn, &ns, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the newest state in ClickHouse: %w", err)
	}
	return seq, eventlog.Subject(eventlog.Key{Scope: scope.Scope{Type: st, Name: sn}, Namespace: ns, Name: name}), nil
}

// DiskUsage reports the events table's active parts: rows stored (every
// state, before merges fold duplicates) and compressed bytes on disk.
func (s *Store) DiskUsage(ctx context.Context) (rows, bytes uint64, err error) {
	err = s.conn.QueryRow(ctx,
		"SELECT sum(rows), sum(bytes) FROM "+s.systemTable("parts")+" WHERE active AND database = ? AND table = ?",
		s.cfg.Database, s.dataTableName("events")).Scan(&rows, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("read disk usage: %w", err)
	}
	return rows, bytes, nil
}
