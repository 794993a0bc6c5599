package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// FieldColumns maps the canonical field-selector vocabulary (the core/v1
// Event field labels, which the events.k8s.io/v1 labels convert to) to the
// SQL expressions over columns that hold them. A field not listed cannot be
// filtered in SQL.
var FieldColumns = map[string]string{
	"metadata.name":                  "name",
	"metadata.namespace":             "namespace",
	"metadata.uid":                   "uid",
	"involvedObject.kind":            "involved_kind",
	"involvedObject.namespace":       "involved_namespace",
	"involvedObject.name":            "involved_name",
	"involvedObject.uid":             "involved_uid",
	"involvedObject.apiVersion":      "involved_api_version",
	"involvedObject.resourceVersion": "involved_resource_version",
	"involvedObject.fieldPath":       "involved_field_path",
	"reason":                         "reason",
	"type":                           "type",
	// kube-apiserver's "source" falls back to reportingController for
	// events.k8s.io writers, which set no source component.
	"source":             "if(source_component != '', source_component, reporting_controller)",
	"reportingComponent": "reporting_controller",
	"related.kind":       "related_kind",
	"related.namespace":  "related_namespace",
	"related.name":       "related_name",
}

// FieldCond is one exact-match condition on a canonical field.
type FieldCond struct {
	Field string
	// Not makes it an inequality.
	Not   bool
	Value string
}

// Cursor is the position after which a list page starts: the sort key of
// the last item of the previous page.
type Cursor struct {
	Namespace, Name string
	Scope           scope.Scope
}

// ListQuery selects a page of events by their latest state.
type ListQuery struct {
	LatestFilter
	// Conds filter the latest states; they are ANDed.
	Conds []FieldCond
	// After starts the page after this position.
	After *Cursor
	// Limit bounds the page; 0 means no bound.
	Limit int
}

// List returns the latest state of every event matching q, deleted events
// excluded, ordered by namespace, name and scope: the order of keys, so a
// cursor taken from the last item continues the list exactly.
//
// A page (Limit > 0) is read in two steps of one query: the page's
// sequences are chosen from the narrow columns only, with the cursor
// applied before the latest state per key is picked (the cursor is on key
// columns, which every state of a key shares, so this cannot change which
// state is the latest), and only the page's rows are then read in full.
// Without that, every page sorted the whole window's wide rows, so kubectl's
// chunked list of all namespaces cost pages × window.
func (s *Store) List(ctx context.Context, q ListQuery) ([]*eventlog.Record, error) {
	sql, args, err := s.listSQL(q)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, sql, args...)
}

// listSQL builds List's query.
func (s *Store) listSQL(q ListQuery) (string, []any, error) {
	conds, condArgs, err := fieldConditions(FieldColumns, q.Conds, "list events")
	if err != nil {
		return "", nil, err
	}
	const keyOrder = " ORDER BY namespace, name, scope_type, scope_name"
	if q.Limit <= 0 {
		sql, args := s.latestSQL(columnNames(), q.LatestFilter)
		for _, c := range conds {
			sql += " AND " + c
		}
		args = append(args, condArgs...)
		if q.After != nil {
			sql += " AND (namespace, name, scope_type, scope_name) > (?, ?, ?, ?)"
			args = append(args, q.After.Namespace, q.After.Name, q.After.Scope.Type, q.After.Scope.Name)
		}
		return sql + keyOrder, args, nil
	}
	f := q.LatestFilter
	var extra []string
	var extraArgs []any
	if q.After != nil {
		extra = append(extra, "(namespace, name, scope_type, scope_name) > (?, ?, ?, ?)")
		extraArgs = append(extraArgs, q.After.Namespace, q.After.Name, q.After.Scope.Type, q.After.Scope.Name)
	}
	inner, args := s.latestSQLWhere(narrowColumnNames(), f, extra, extraArgs)
	for _, c := range conds {
		inner += " AND " + c
	}
	args = append(args, condArgs...)
	inner = "SELECT seq FROM (" + inner + keyOrder + fmt.Sprintf(" LIMIT %d", q.Limit) + ")"
	// The outer read repeats the scope and namespace filters so that it, too,
	// only touches the tenant's part of the index. LIMIT 1 BY seq folds an
	// exact duplicate row (a state written twice, not merged yet).
	outer := "SELECT " + columnNames() + " FROM " + s.table() + " PREWHERE seq " + s.globalIn() + " (" + inner + ")"
	where, whereArgs := LatestFilter{Scope: f.Scope, Namespace: f.Namespace}.conditions()
	args = append(args, whereArgs...)
	if len(where) > 0 {
		outer += " WHERE " + strings.Join(where, " AND ")
	}
	return outer + keyOrder + " LIMIT 1 BY seq", args, nil
}

// Get returns the latest state of one event (in any scope when sc is nil,
// the newest across scopes), or nil when it does not exist or was deleted.
// It is not windowed: an event stays readable for as long as it is stored.
func (s *Store) Get(ctx context.Context, sc *scope.Scope, namespace, name string) (*eventlog.Record, error) {
	sql, args := s.latestSQL(columnNames(), LatestFilter{Scope: sc, Namespace: &namespace, Name: &name})
	// Deleted events are dropped by latestSQL's outer filter, which runs
	// after the latest state is picked, so a deleted event yields nothing.
	recs, err := s.query(ctx, sql+" ORDER BY seq DESC LIMIT 1", args...)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]*eventlog.Record, error) {
	var out []*eventlog.Record
	if err := s.eachRecord(ctx, sql, args, func(_ *Row, rec *eventlog.Record) { out = append(out, rec) }); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

// eachRecord runs sql, which selects columnNames(), and hands add each row
// and the record it holds, in order. Its errors are the driver's and
// DecodeRow's as they are, a scan's after "scan: ": callers put their own
// words before them, and those texts reach clients in 503s.
func (s *Store) eachRecord(ctx context.Context, sql string, args []any, add func(r *Row, rec *eventlog.Record)) error {
	return s.eachRow(ctx, sql, args, func(rows driver.Rows) error {
		var r Row
		if err := scanRow(rows, &r); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		rec, err := DecodeRow(&r)
		if err != nil {
			return err
		}
		add(&r, rec)
		return nil
	})
}

// eachRow runs sql and calls scan on each row it selects, in order, until
// scan fails. Errors (the query's, scan's, the driver's after the last
// row) come back unwrapped, so that each caller words them as it always
// has.
func (s *Store) eachRow(ctx context.Context, sql string, args []any, scan func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanRow reads one row selected with columnNames() into r.
func scanRow(rows driver.Rows, r *Row) error {
	var rest string
	if err := rows.Scan(&r.ScopeType, &r.ScopeName, &r.Namespace, &r.Name, &r.UID, &r.Seq, &r.Op, &r.LastTime, &r.LastNanos,
		&r.InvolvedKind, &r.InvolvedNamespace, &r.InvolvedName, &r.InvolvedUID, &r.InvolvedAPIVersion,
		&r.InvolvedResourceVersion, &r.InvolvedFieldPath, &r.Reason, &r.Message, &r.Type,
		&r.SourceComponent, &r.SourceHost, &r.ReportingController, &r.ReportingInstance, &r.Action,
		&r.RelatedKind, &r.RelatedNamespace, &r.RelatedName, &r.Count, &rest, &r.Lease); err != nil {
		return err
	}
	r.Rest = []byte(rest)
	return nil
}
