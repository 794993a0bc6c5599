package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// KeyRange selects the live events of one scope by their etcd key below
// the resource prefix, namespace + "/" + name: what the etcd front's Range
// reads. Keys are compared and ordered as etcd compares them, byte by
// byte, which is not the (namespace, name) order of List: "a-b/x" sorts
// before "a/y".
type KeyRange struct {
	// LatestFilter must name a scope; Since bounds the states read (the
	// front's window, which covers every event a lease still keeps).
	LatestFilter
	// From is the first key of the range, inclusive; "" is the first key.
	From string
	// To ends the range, exclusive; "" means no end.
	To string
	// Lease, when not zero, keeps only events whose latest state was
	// written with this lease.
	Lease int64
	// Limit bounds the keys returned; 0 means no bound.
	Limit int
}

// etcdKey is the SQL expression of an event's key below the prefix.
const etcdKey = "concat(namespace, '/', name)"

// latestKeysSQL returns the query of the live latest states of q's keys,
// with the columns seq and key only, ordered by key.
func (s *Store) latestKeysSQL(q KeyRange) (string, []any, error) {
	if q.Scope == nil {
		return "", nil, fmt.Errorf("key range: a scope is required")
	}
	where, args := q.LatestFilter.conditions()
	// Bounds are cut at a NUL byte, which ClickHouse's literals do not
	// carry and no key holds: kube-apiserver continues a list from the last
	// key + "\x00", and key >= k+"\x00" is key > k.
	if q.From != "" {
		from, cut := cutNUL(q.From)
		op := " >= ?"
		if cut {
			op = " > ?"
		}
		where = append(where, etcdKey+op)
		args = append(args, from)
	}
	if q.To != "" {
		to, cut := cutNUL(q.To)
		op := " < ?"
		if cut {
			op = " <= ?"
		}
		where = append(where, etcdKey+op)
		args = append(args, to)
	}
	// The latest state per key is picked from the narrow columns first;
	// the conditions on key columns above hold for every state of a key,
	// so they cannot change which state is the latest.
	inner := "SELECT namespace, name, seq, op, lease FROM " + s.table() + " WHERE " + strings.Join(where, " AND ") +
		" ORDER BY seq DESC LIMIT 1 BY namespace, name"
	sql := "SELECT seq, " + etcdKey + " AS key FROM (" + inner + ") WHERE " + liveOp
	if q.Lease != 0 {
		sql += " AND lease = ?"
		args = append(args, q.Lease)
	}
	sql += " ORDER BY key"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return sql, args, nil
}

// RangeKeys returns the latest states of q's live events, ordered by key.
// Only the chosen rows are read in full.
func (s *Store) RangeKeys(ctx context.Context, q KeyRange) ([]*eventlog.Record, error) {
	keys, args, err := s.latestKeysSQL(q)
	if err != nil {
		return nil, err
	}
	// The outer read repeats the scope filter so that it only touches the
	// tenant's part of the index; LIMIT 1 BY seq folds an exact duplicate
	// row (a state written twice, not merged yet).
	where, whereArgs := LatestFilter{Scope: q.Scope, Namespace: q.Namespace}.conditions()
	sql := "SELECT " + columnNames() + " FROM " + s.table() + " PREWHERE seq " + s.globalIn() + " (SELECT seq FROM (" + keys + "))" +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY " + etcdKey + " LIMIT 1 BY seq"
	return s.query(ctx, sql, append(args, whereArgs...)...)
}

// CountKeys counts q's live events (Limit is ignored).
func (s *Store) CountKeys(ctx context.Context, q KeyRange) (uint64, error) {
	q.Limit = 0
	keys, args, err := s.latestKeysSQL(q)
	if err != nil {
		return 0, err
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM ("+keys+")", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return n, nil
}

// cutNUL returns k up to its first NUL byte, and whether it had one.
func cutNUL(k string) (string, bool) {
	before, _, found := strings.Cut(k, "\x00")
	return before, found
}
