package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// activityColumns is the activities table's column list in insert order.
// Like events, the fields reads filter on are extracted at write time and
// the whole Activity is kept in body.
var activityColumns = []struct{ name, typ string }{
	{"scope_type", "String"},
	{"scope_name", "String"},
	{"namespace", "String"},
	{"name", "String"},
	{"seq", "UInt64"},
	{"source_seq", "UInt64"},
	{"last_ts", "DateTime"},
	{"last_ts_nanos", "UInt32"},
	{"resource_kind", "String"},
	{"resource_name", "String"},
	{"actor_name", "String"},
	{"reason", "String"},
	{"type", "String"},
	{"summary", "String"},
	{"body", "String"},
}

func activityColumnNames() string {
	names := make([]string, len(activityColumns))
	for i, c := range activityColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// activitiesMigration creates the activities table: one row per Activity
// state, the sequence being the state's position in the ACTIVITIES stream.
// The layout follows the events table for the same reasons: tenant and hour
// lead the key, day partitions make retention a DROP PARTITION, and seq
// ends the key so exact re-inserts fold on merge (reads never rely on it).
func activitiesMigration(db string, o SchemaOptions) []string {
	var cols []string
	for _, c := range activityColumns {
		cols = append(cols, "    "+c.name+" "+c.typ)
	}
	return append([]string{
		"CREATE TABLE IF NOT EXISTS " + o.dataTable(db, "activities") + o.onCluster() + " (\n" + strings.Join(cols, ",\n") + "\n)" +
			" ENGINE = " + o.replacingEngine(db, "activities", "") +
			" PARTITION BY toYYYYMMDD(last_ts)" +
			" ORDER BY (scope_type, scope_name, toStartOfHour(last_ts), namespace, name, seq)" +
			" SETTINGS index_granularity = 8192",
	}, o.distributedTable(db, "activities")...)
}

// ActivityRow is one Activity state as stored.
type ActivityRow struct {
	ScopeType, ScopeName string
	Namespace, Name      string
	Seq, SourceSeq       uint64
	LastTime             time.Time
	LastNanos            uint32
	ResourceKind         string
	ResourceName         string
	ActorName            string
	Reason, Type         string
	Summary              string
	Body                 []byte
}

func (s *Store) activityTable() string { return quoteIdent(s.cfg.Database) + ".activities" }

// ClampTime bounds t to what a DateTime column holds, for indexing; the
// exact time stays in the stored body.
func ClampTime(t time.Time) time.Time {
	t = t.UTC()
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t
}

// InsertActivities writes rows as one batch; like Insert, a failed batch
// may be retried whole (duplicates fold on read).
func (s *Store) InsertActivities(ctx context.Context, rows []ActivityRow) error {
	if len(rows) == 0 {
		return nil
	}
	return s.insertBatch(ctx, s.activityTable(), activityColumnNames(), "activities", func(b driver.Batch) error {
		for i := range rows {
			r := &rows[i]
			if err := b.Append(r.ScopeType, r.ScopeName, r.Namespace, r.Name, r.Seq, r.SourceSeq, r.LastTime, r.LastNanos,
				r.ResourceKind, r.ResourceName, r.ActorName, r.Reason, r.Type, r.Summary, string(r.Body)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ActivityFieldColumns maps the Activity field selectors to columns.
var ActivityFieldColumns = map[string]string{
	"metadata.name":      "name",
	"metadata.namespace": "namespace",
	"spec.resource.kind": "resource_kind",
	"spec.resource.name": "resource_name",
	"spec.actor.name":    "actor_name",
	"spec.reason":        "reason",
}

// ActivityCursor is the position after which a page of activities starts:
// the sort key (newest first) of the previous page's last item.
type ActivityCursor struct {
	LastTime  time.Time
	LastNanos uint32
	Namespace string
	Name      string
	Scope     scope.Scope
}

// ActivityQuery selects a page of activities by their latest state.
type ActivityQuery struct {
	// Scope limits the read to one tenant; nil reads every scope.
	Scope *scope.Scope
	// Namespace, when not nil, limits the read to one namespace.
	Namespace *string
	// Name, when not nil, limits the read to one activity.
	Name *string
	// Since keeps activities last seen at or after it; zero means any time.
	Since time.Time
	// AtSeq answers as of this ACTIVITIES sequence; zero means no bound.
	AtSeq uint64
	// Conds filter latest states; fields are ActivityFieldColumns keys.
	Conds []FieldCond
	After *ActivityCursor
	Limit int
}

// activitySQL builds the query for q: the latest state per activity (LIMIT
// 1 BY, as for events), filtered, newest first.
func (s *Store) activitySQL(q ActivityQuery) (string, []any, error) {
	where, args := LatestFilter{Scope: q.Scope, Namespace: q.Namespace, Name: q.Name, Since: q.Since, AtSeq: q.AtSeq}.conditions()
	cols := activityColumnNames()
	inner := "SELECT " + cols + " FROM " + s.activityTable()
	if len(where) > 0 {
		inner += " WHERE " + strings.Join(where, " AND ")
	}
	inner += " ORDER BY seq DESC LIMIT 1 BY scope_type, scope_name, namespace, name"
	outer, condArgs, err := fieldConditions(ActivityFieldColumns, q.Conds, "list activities")
	if err != nil {
		return "", nil, err
	}
	args = append(args, condArgs...)
	if a := q.After; a != nil {
		// Newest first, then by key: the rows after the cursor are older,
		// or as old and later in key order.
		outer = append(outer, "((last_ts, last_ts_nanos) < (?, ?) OR ((last_ts, last_ts_nanos) = (?, ?) AND (namespace, name, scope_type, scope_name) > (?, ?, ?, ?)))")
		ts := a.LastTime.UTC().Truncate(time.Second)
		args = append(args, ts, a.LastNanos, ts, a.LastNanos, a.Namespace, a.Name, a.Scope.Type, a.Scope.Name)
	}
	sql := "SELECT " + cols + " FROM (" + inner + ")"
	if len(outer) > 0 {
		sql += " WHERE " + strings.Join(outer, " AND ")
	}
	sql += " ORDER BY last_ts DESC, last_ts_nanos DESC, namespace, name, scope_type, scope_name"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return sql, args, nil
}

// ListActivities returns the latest state of every activity q selects,
// newest first.
func (s *Store) ListActivities(ctx context.Context, q ActivityQuery) ([]ActivityRow, error) {
	sql, args, err := s.activitySQL(q)
	if err != nil {
		return nil, err
	}
	return s.activityRows(ctx, sql, args, "list activities")
}

// activityRows runs a query of activityColumnNames' columns.
func (s *Store) activityRows(ctx context.Context, sql string, args []any, what string) ([]ActivityRow, error) {
	var out []ActivityRow
	err := s.eachRow(ctx, sql, args, func(rows driver.Rows) error {
		var r ActivityRow
		var body string
		if err := rows.Scan(&r.ScopeType, &r.ScopeName, &r.Namespace, &r.Name, &r.Seq, &r.SourceSeq, &r.LastTime, &r.LastNanos,
			&r.ResourceKind, &r.ResourceName, &r.ActorName, &r.Reason, &r.Type, &r.Summary, &body); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		r.Body = []byte(body)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// RecentEvents returns the latest states of the newest limit events about
// objects of kind (any kind when empty), in scope sc (all when nil),
// observed since since, newest first. PolicyPreview tries drafts on them.
func (s *Store) RecentEvents(ctx context.Context, sc *scope.Scope, kind string, since time.Time, limit int) ([]*eventlog.Record, error) {
	sql, args := s.latestSQL(columnNames(), LatestFilter{Scope: sc, Since: since})
	if kind != "" {
		sql += " AND involved_kind = ?"
		args = append(args, kind)
	}
	sql += fmt.Sprintf(" ORDER BY last_ts DESC, last_ts_nanos DESC, namespace, name LIMIT %d", limit)
	return s.query(ctx, sql, args...)
}

// ObjectName names objects of one kind: the one called Name, or with
// Prefix every one whose name starts with Name (a controller's children,
// web-7d9f for a Deployment web).
type ObjectName struct {
	Kind, Name string
	Prefix     bool
}

// RelatedQuery selects the activities that may be tied to one activity:
// of the other source (requests for an event's activity, events for a
// request's), in the same scope and namespace, about the named objects,
// last seen within [From, To].
type RelatedQuery struct {
	Scope     scope.Scope
	Namespace string
	// Audit selects activities made from audit records (named audit-…);
	// false selects those made from events.
	Audit    bool
	Objects  []ObjectName
	From, To time.Time
	// AtSeq answers as of this ACTIVITIES sequence; zero means no bound.
	AtSeq uint64
	Limit int
}

// auditPrefixLike is the LIKE pattern of audit activity names (the
// underscore-free prefix needs no escaping).
const auditPrefixLike = "audit-%"

// relatedSQL builds q's query: the latest state of each matching activity,
// oldest first.
func (s *Store) relatedSQL(q RelatedQuery) (string, []any) {
	ns := q.Namespace
	where, args := LatestFilter{Scope: &q.Scope, Namespace: &ns, Since: q.From, AtSeq: q.AtSeq}.conditions()
	where = append(where, "last_ts <= ?")
	args = append(args, q.To.UTC().Truncate(time.Second))
	if q.Audit {
		where = append(where, "name LIKE '"+auditPrefixLike+"'")
	} else {
		where = append(where, "name NOT LIKE '"+auditPrefixLike+"'")
	}
	var objs []string
	for _, o := range q.Objects {
		if o.Prefix {
			objs = append(objs, "(resource_kind = ? AND resource_name LIKE ?)")
			args = append(args, o.Kind, likePrefix(o.Name))
		} else {
			objs = append(objs, "(resource_kind = ? AND resource_name = ?)")
			args = append(args, o.Kind, o.Name)
		}
	}
	if len(objs) == 0 {
		objs = []string{"0"}
	}
	where = append(where, "("+strings.Join(objs, " OR ")+")")
	sql := "SELECT " + activityColumnNames() + " FROM (SELECT " + activityColumnNames() + " FROM " + s.activityTable() +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY seq DESC LIMIT 1 BY scope_type, scope_name, namespace, name)" +
		" ORDER BY last_ts, last_ts_nanos, source_seq, name"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return sql, args
}

// likePrefix is the LIKE pattern of the names that start with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

// RelatedActivities returns the activities q selects.
func (s *Store) RelatedActivities(ctx context.Context, q RelatedQuery) ([]ActivityRow, error) {
	sql, args := s.relatedSQL(q)
	return s.activityRows(ctx, sql, args, "related activities")
}
