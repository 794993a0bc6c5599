package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// auditColumns is the audit_records table's column list in insert order.
// As for events, the fields reads filter on are extracted at write time
// (no JSON functions on 18.16) and the whole audit.k8s.io/v1 Event is kept
// in body.
var auditColumns = []struct{ name, typ string }{
	{"scope_type", "String"},
	{"scope_name", "String"},
	{"audit_id", "String"},
	{"stage", "String"},
	{"seq", "UInt64"},
	{"request_ts", "DateTime"},
	{"request_ts_nanos", "UInt32"},
	{"stage_ts", "DateTime"},
	{"level", "String"},
	{"verb", "String"},
	{"username", "String"},
	{"user_groups", "Array(String)"},
	{"namespace", "String"},
	{"api_group", "String"},
	{"api_version", "String"},
	{"resource", "String"},
	{"subresource", "String"},
	{"name", "String"},
	{"code", "Int32"},
	{"source_ip", "String"},
	{"user_agent", "String"},
	{"body", "String"},
}

// auditTableName is the audit records' table in the store's database.
const auditTableName = "audit_records"

func auditColumnNames() string {
	names := make([]string, len(auditColumns))
	for i, c := range auditColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// auditMigration creates the audit_records table: one row per audit record,
// that is one stage of one request.
//
// A record's identity is (scope, audit_id, stage). kube-apiserver retries a
// batch after a failure, and the retried record reaches the AUDIT stream
// again with another sequence, so seq is not in the sort key: every copy of
// a record has the same key (its request time is part of the record) and
// ReplacingMergeTree(seq) keeps one on merge. Reads never rely on that
// merge: they fold copies with LIMIT 1 BY (see auditPickSQL). The tenant and
// the hour lead the key, as in the events table, so a tenant's time range
// is one stretch of the index; day partitions make retention a DROP
// PARTITION.
func auditMigration(db string, o SchemaOptions) []string {
	var cols []string
	for _, c := range auditColumns {
		cols = append(cols, "    "+c.name+" "+c.typ)
	}
	return append([]string{
		"CREATE TABLE IF NOT EXISTS " + o.dataTable(db, auditTableName) + o.onCluster() + " (\n" + strings.Join(cols, ",\n") + "\n)" +
			" ENGINE = " + o.replacingEngine(db, auditTableName, "seq") +
			" PARTITION BY toYYYYMMDD(request_ts)" +
			" ORDER BY (scope_type, scope_name, toStartOfHour(request_ts), audit_id, stage)" +
			" SETTINGS index_granularity = 1024",
	}, o.distributedTable(db, auditTableName)...)
}

// AuditRow is one audit record (one stage of one request) as stored.
type AuditRow struct {
	ScopeType, ScopeName        string
	AuditID, Stage              string
	Seq                         uint64    // the record's AUDIT stream sequence
	RequestTime                 time.Time // requestReceivedTimestamp, seconds (DateTime)
	RequestNanos                uint32
	StageTime                   time.Time // stageTimestamp, seconds
	Level, Verb                 string
	User                        string   // user.username
	UserGroups                  []string // user.groups (Array(String))
	Namespace                   string   // objectRef.namespace
	APIGroup, APIVersion        string   // objectRef
	Resource, Subresource, Name string   // objectRef
	Code                        int32    // responseStatus.code (0 when absent)
	SourceIP, UserAgent         string
	Body                        []byte // the whole audit.k8s.io/v1 Event as JSON
}

func (s *Store) auditTable() string { return quoteIdent(s.cfg.Database) + "." + auditTableName }

// InsertAudit writes rows as one batch. When it returns nil every row is
// committed; on error none or some may be, and the caller may send the
// same rows again: copies of a record, whatever their sequence, are read
// once.
func (s *Store) InsertAudit(ctx context.Context, rows []AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	return s.insertBatch(ctx, s.auditTable(), auditColumnNames(), "audit records", func(b driver.Batch) error {
		for i := range rows {
			r := &rows[i]
			groups := r.UserGroups
			if groups == nil {
				groups = []string{}
			}
			if err := b.Append(r.ScopeType, r.ScopeName, r.AuditID, r.Stage, r.Seq, ClampTime(r.RequestTime), r.RequestNanos,
				ClampTime(r.StageTime), r.Level, r.Verb, r.User, groups, r.Namespace, r.APIGroup, r.APIVersion,
				r.Resource, r.Subresource, r.Name, r.Code, r.SourceIP, r.UserAgent, string(r.Body)); err != nil {
				return err
			}
		}
		return nil
	})
}

// CodeRange selects response codes from Min to Max, both included; a
// single code is a range of one.
type CodeRange struct{ Min, Max int32 }

// AuditKey is the position of a record in audit order: newest request
// first, then scope, audit ID and stage ascending. It is a total order, so
// a keyset cursor continues exactly.
type AuditKey struct {
	RequestTime    time.Time // to the nanosecond
	Scope          scope.Scope
	AuditID, Stage string
}

// AuditQuery is one page of audit records.
type AuditQuery struct {
	// Scope limits the read to one tenant; nil reads every scope (platform
	// callers only; the API layer decides).
	Scope *scope.Scope
	// Start (inclusive) and End (exclusive) bound requestReceivedTimestamp,
	// to the nanosecond.
	Start, End time.Time
	// AtSeq answers as of this AUDIT sequence (the audit indexer's
	// watermark); 0 is an empty answer: nothing is committed.
	AtSeq uint64
	// The filters; an empty one does not filter. Within a list the values
	// are ORed, the filters are ANDed.
	User        string
	Verbs       []string
	Stages      []string
	Resource    string
	APIGroup    *string // nil: any group; "" is the core group
	Subresource *string // nil: any; "" only requests on the resource itself
	Namespace   *string // nil: any; "" only cluster-scoped objects
	Name        string
	Codes       []CodeRange
	// After starts the page after this position.
	After *AuditKey
	// Limit bounds the page; it must be positive.
	Limit int
}

// AuditRecord is one stored record as read back.
type AuditRecord struct {
	AuditRow
	// Key is the record's position, for the next page's cursor.
	Key AuditKey
}

// auditOrder is newest request first, then the record's identity.
const auditOrder = "request_ts DESC, request_ts_nanos DESC, scope_type, scope_name, audit_id, stage"

// auditWhere is q's filter on stored rows, without the cursor. Every copy
// of a record holds the same values, so filtering before the copies are
// folded selects the same records as filtering after.
func auditWhere(q AuditQuery) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Scope != nil {
		add("scope_type = ?", q.Scope.Type)
		add("scope_name = ?", q.Scope.Name)
	}
	start, end := q.Start.UTC(), q.End.UTC()
	sTS, eTS := start.Truncate(time.Second), end.Truncate(time.Second)
	// Whole seconds first (the sort key's hour prunes on them), then the
	// exact bounds.
	add("request_ts >= ? AND request_ts <= ?", sTS, eTS)
	add("(request_ts > ? OR request_ts_nanos >= ?)", sTS, uint32(start.Nanosecond()))
	add("(request_ts < ? OR request_ts_nanos < ?)", eTS, uint32(end.Nanosecond()))
	add("seq <= ?", q.AtSeq)
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
		a := make([]any, len(vals))
		for i, v := range vals {
			a[i] = v
		}
		add(col+" IN ("+ph+")", a...)
	}
	if q.User != "" {
		add("username = ?", q.User)
	}
	in("verb", q.Verbs)
	in("stage", q.Stages)
	if q.Resource != "" {
		add("resource = ?", q.Resource)
	}
	if q.APIGroup != nil {
		add("api_group = ?", *q.APIGroup)
	}
	if q.Subresource != nil {
		add("subresource = ?", *q.Subresource)
	}
	if q.Namespace != nil {
		add("namespace = ?", *q.Namespace)
	}
	if q.Name != "" {
		add("name = ?", q.Name)
	}
	if len(q.Codes) > 0 {
		var ors []string
		for _, c := range q.Codes {
			ors = append(ors, "(code >= ? AND code <= ?)")
			args = append(args, c.Min, c.Max)
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	return strings.Join(where, " AND "), args
}

// auditAfter is the condition for rows after key k in audit order.
func auditAfter(k AuditKey) (string, []any) {
	t := k.RequestTime.UTC()
	ts, ns := t.Truncate(time.Second), uint32(t.Nanosecond())
	return "(request_ts < ? OR (request_ts = ? AND (request_ts_nanos < ? OR (request_ts_nanos = ?" +
			" AND (scope_type, scope_name, audit_id, stage) > (?, ?, ?, ?)))))",
		[]any{ts, ts, ns, ns, k.Scope.Type, k.Scope.Name, k.AuditID, k.Stage}
}

// auditSQL returns the page query of q in two steps, as history pages are
// read: the page's records are picked from narrow columns (one copy per
// record: LIMIT 1 BY its identity), then only rows with those sequences are
// read in full, under the same filter, and folded and ordered again. One
// AUDIT message may hold several records, so the second step keeps the
// filter and the cursor: the rows it reads beyond the page's records then
// sort after them and fall to the limit.
func (s *Store) auditSQL(q AuditQuery) (string, []any, error) {
	if q.Limit <= 0 {
		return "", nil, fmt.Errorf("audit query: limit must be positive, got %d", q.Limit)
	}
	where, args := auditWhere(q)
	if q.After != nil {
		c, a := auditAfter(*q.After)
		where += " AND " + c
		args = append(args, a...)
	}
	const identity = "scope_type, scope_name, audit_id, stage"
	// page folds the copies of each record in rows and keeps the first
	// q.Limit records in audit order. On a Distributed table (cluster
	// mode) the fold is a subquery of its own: 18.16's shards apply a
	// query's LIMIT before its LIMIT BY, so copies of one record would
	// fill the limit and the page would come back short.
	page := func(cols, rows string) string {
		q1 := "SELECT " + cols + " FROM " + rows + " ORDER BY " + auditOrder + ", seq DESC LIMIT 1 BY " + identity
		if s.cfg.Cluster != "" {
			q1 = "SELECT " + cols + " FROM (" + q1 + ") ORDER BY " + auditOrder + ", seq DESC"
		}
		return q1 + fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	pickCols := "seq"
	if s.cfg.Cluster != "" {
		pickCols = "seq, request_ts, request_ts_nanos, " + identity // what the outer ORDER BY needs
	}
	pick := page(pickCols, s.auditTable()+" WHERE "+where)
	if s.cfg.Cluster != "" {
		pick = "SELECT seq FROM (" + pick + ")"
	}
	// PREWHERE: the few sequences are found from the seq column alone;
	// only their granules are then read in full (body).
	sql := page(auditColumnNames(), s.auditTable()+" PREWHERE seq "+s.globalIn()+" ("+pick+") WHERE "+where)
	all := append(append([]any{}, args...), args...)
	return sql, all, nil
}

// QueryAudit returns one page of q: matching records, newest request first,
// each record once however often it was stored.
func (s *Store) QueryAudit(ctx context.Context, q AuditQuery, l Limits) ([]AuditRecord, error) {
	if q.AtSeq == 0 {
		return nil, nil
	}
	sql, args, err := s.auditSQL(q)
	if err != nil {
		return nil, fmt.Errorf("query audit records: %w", err)
	}
	qctx, cancel := limitContext(ctx, l)
	defer cancel()
	var out []AuditRecord
	err = s.eachRow(qctx, sql, args, func(rows driver.Rows) error {
		var r AuditRecord
		var body string
		if err := rows.Scan(&r.ScopeType, &r.ScopeName, &r.AuditID, &r.Stage, &r.Seq, &r.RequestTime, &r.RequestNanos,
			&r.StageTime, &r.Level, &r.Verb, &r.User, &r.UserGroups, &r.Namespace, &r.APIGroup, &r.APIVersion,
			&r.Resource, &r.Subresource, &r.Name, &r.Code, &r.SourceIP, &r.UserAgent, &body); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		r.Body = []byte(body)
		r.RequestTime, r.StageTime = r.RequestTime.UTC(), r.StageTime.UTC()
		r.Key = AuditKey{RequestTime: r.RequestTime.Add(time.Duration(r.RequestNanos)),
			Scope: scope.Scope{Type: r.ScopeType, Name: r.ScopeName}, AuditID: r.AuditID, Stage: r.Stage}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, classify(qctx, "query audit records", err)
	}
	return out, nil
}

// CountAudit counts the records q selects (cursor and limit ignored), each
// once however often it was stored.
func (s *Store) CountAudit(ctx context.Context, q AuditQuery, l Limits) (uint64, error) {
	if q.AtSeq == 0 {
		return 0, nil
	}
	sql, args := s.countAuditSQL(q)
	qctx, cancel := limitContext(ctx, l)
	defer cancel()
	var n uint64
	if err := s.conn.QueryRow(qctx, sql, args...).Scan(&n); err != nil {
		return 0, classify(qctx, "count audit records", err)
	}
	return n, nil
}

// countAuditSQL counts the distinct records q's filter selects.
func (s *Store) countAuditSQL(q AuditQuery) (string, []any) {
	where, args := auditWhere(q)
	return "SELECT count() FROM (SELECT DISTINCT scope_type, scope_name, audit_id, stage FROM " + s.auditTable() + " WHERE " + where + ")", args
}
