package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/fieldselector"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Errors of bounded history queries. The API layer turns them into 4xx
// answers that tell the caller to narrow the query.
var (
	// ErrTooManyRows: the query would read more rows than Limits allow.
	ErrTooManyRows = errors.New("query reads too many rows")
	// ErrQueryTimeout: the query ran longer than Limits allow.
	ErrQueryTimeout = errors.New("query took too long")
)

// ClickHouse exception codes that mean a query limit was hit.
const (
	codeTooManyRows         = 158
	codeTimeoutExceeded     = 159
	codeTooSlow             = 160
	codeTooManyBytes        = 307
	codeTooManyRowsOrBytes  = 396
	codeQueryWasCancelled   = 394
	codeTimeoutExceededMisc = 209 // SOCKET_TIMEOUT: the server gave up sending
)

// Limits bound one history query on the server (invariant 8,
// docs/architecture.md#8-bounded-cost).
type Limits struct {
	// MaxRowsToRead is ClickHouse's max_rows_to_read; 0 means no bound.
	MaxRowsToRead uint64
	// MaxExecutionTime is ClickHouse's max_execution_time (whole seconds,
	// at least one); 0 means no bound. The client also gives up a little
	// after it.
	MaxExecutionTime time.Duration
}

// limitContext applies l to ctx: server settings, and a client deadline a
// little after the server's so that the server's clearer error wins.
func limitContext(ctx context.Context, l Limits) (context.Context, context.CancelFunc) {
	settings := ch.Settings{}
	if l.MaxRowsToRead > 0 {
		// int: for servers as old as 18.16 clickhouse-go encodes settings
		// as integers and accepts only int and bool values.
		settings["max_rows_to_read"] = int(min(l.MaxRowsToRead, 1<<62))
	}
	cancel := context.CancelFunc(func() {})
	if l.MaxExecutionTime > 0 {
		secs := max(int((l.MaxExecutionTime+time.Second-1)/time.Second), 1)
		settings["max_execution_time"] = secs
		ctx, cancel = context.WithTimeout(ctx, time.Duration(secs)*time.Second+2*time.Second)
	}
	if len(settings) == 0 {
		return ctx, cancel
	}
	return ch.Context(ctx, ch.WithSettings(settings)), cancel
}

// classify maps limit errors to ErrTooManyRows / ErrQueryTimeout, keeping
// the server's text.
func classify(ctx context.Context, what string, err error) error {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeTooManyRows, codeTooManyBytes, codeTooManyRowsOrBytes:
			return fmt.Errorf("%s: %w: %s", what, ErrTooManyRows, ex.Message)
		case codeTimeoutExceeded, codeTooSlow, codeQueryWasCancelled, codeTimeoutExceededMisc:
			return fmt.Errorf("%s: %w: %s", what, ErrQueryTimeout, ex.Message)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %v", what, ErrQueryTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// HistoryFilter selects events over a time window by their latest state.
type HistoryFilter struct {
	// Scope limits the read to one tenant; nil reads every scope (platform
	// callers only; the API layer decides).
	Scope *scope.Scope
	// Namespace, when not nil, limits the read to one namespace.
	Namespace *string
	// Start (inclusive) and End (exclusive) bound the latest state's last
	// observation, to the nanosecond.
	Start, End time.Time
	// AtSeq answers as of this sequence; it must be positive (0 is an
	// empty answer: nothing is committed).
	AtSeq uint64
	// Selector filters the latest states.
	Selector []fieldselector.Requirement
}

// HistoryKey is the position of an event in history order: newest last
// observation first, then scope, namespace and name ascending.
type HistoryKey struct {
	LastTime        time.Time
	Scope           scope.Scope
	Namespace, Name string
}

// HistoryKeyOf returns the history position of a record read by
// QueryHistory.
func HistoryKeyOf(r *eventlog.Record, lastTime time.Time) HistoryKey {
	return HistoryKey{LastTime: lastTime, Scope: r.Key.Scope, Namespace: r.Key.Namespace, Name: r.Key.Name}
}

// HistoryQuery is one page of an EventQuery.
type HistoryQuery struct {
	HistoryFilter
	// After starts the page after this position.
	After *HistoryKey
	// Limit bounds the page; it must be positive.
	Limit int
}

// HistoryRecord is an event's latest state with its exact last observation
// (the history sort key).
type HistoryRecord struct {
	*eventlog.Record
	LastTime time.Time
}

var identWord = regexp.MustCompile(`[a-z_]+`)

// referencedColumns returns the table columns named in exprs.
func referencedColumns(exprs ...string) []string {
	known := map[string]bool{}
	for _, c := range columns {
		known[c.name] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range exprs {
		for _, w := range identWord.FindAllString(e, -1) {
			if known[w] && !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	sort.Strings(out)
	return out
}

// historyBaseColumns are what every history query needs from each state.
var historyBaseColumns = []string{"scope_type", "scope_name", "namespace", "name", "seq", "op", "last_ts", "last_ts_nanos"}

// rangeSQL is the prefilter on raw states: tenant, namespace, the window's
// start (whole seconds, for the sort key's hour column) and the watermark.
// No upper time bound: an event's latest state may lie after End, and it
// must still win over the older states (which then drop out in the outer
// window filter).
func (s *Store) rangeSQL(f HistoryFilter) (string, []any) {
	where, args := LatestFilter{Scope: f.Scope, Namespace: f.Namespace, Since: f.Start}.conditions()
	// Always bounded by the watermark, also at 0 (nothing committed yet),
	// where LatestFilter reads 0 as "no bound".
	where = append(where, "seq <= ?")
	args = append(args, f.AtSeq)
	return strings.Join(where, " AND "), args
}

// matchedSQL returns a query of cols (plus the base columns) over the
// latest state of each event as of f.AtSeq, not deleted, last observed
// within [Start, End), that matches f.Selector. The latest state is picked
// before the selector applies, so an older state never matches.
func (s *Store) matchedSQL(f HistoryFilter, extraExprs ...string) (string, []any, error) {
	selSQL, selArgs, err := fieldselector.WhereSQL(f.Selector, FieldColumns)
	if err != nil {
		return "", nil, err
	}
	cols := append([]string(nil), historyBaseColumns...)
	for _, c := range referencedColumns(append([]string{selSQL}, extraExprs...)...) {
		if !contains(cols, c) {
			cols = append(cols, c)
		}
	}
	colList := strings.Join(cols, ", ")
	rng, args := s.rangeSQL(f)
	start, end := f.Start.UTC(), f.End.UTC()
	q := "SELECT " + colList + " FROM (SELECT " + colList + " FROM " + s.table() + " WHERE " + rng +
		" ORDER BY seq DESC LIMIT 1 BY scope_type, scope_name, namespace, name)" +
		" WHERE op != " + fmt.Sprint(uint8(eventlog.OpDelete)) +
		" AND (last_ts > ? OR (last_ts = ? AND last_ts_nanos >= ?))" +
		" AND (last_ts < ? OR (last_ts = ? AND last_ts_nanos < ?))" +
		" AND " + selSQL
	sTS, eTS := start.Truncate(time.Second), end.Truncate(time.Second)
	args = append(args, sTS, sTS, uint32(start.Nanosecond()), eTS, eTS, uint32(end.Nanosecond()))
	args = append(args, selArgs...)
	return q, args, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// historyOrder is newest first, then the event's identity: a total order,
// so a keyset cursor continues exactly.
const historyOrder = "last_ts DESC, last_ts_nanos DESC, scope_type, scope_name, namespace, name"

// historySQL returns the page query of q: first the page's sequences are
// picked from narrow columns, then only those rows are read in full.
func (s *Store) historySQL(q HistoryQuery) (string, []any, error) {
	if q.Limit <= 0 {
		return "", nil, fmt.Errorf("history query: limit must be positive, got %d", q.Limit)
	}
	matched, margs, err := s.matchedSQL(q.HistoryFilter)
	if err != nil {
		return "", nil, err
	}
	pick := "SELECT seq FROM (" + matched + ")"
	if q.After != nil {
		a := q.After
		ts := a.LastTime.UTC().Truncate(time.Second)
		ns := uint32(a.LastTime.Nanosecond())
		pick += " WHERE (last_ts < ? OR (last_ts = ? AND (last_ts_nanos < ? OR (last_ts_nanos = ?" +
			" AND (scope_type, scope_name, namespace, name) > (?, ?, ?, ?)))))"
		margs = append(margs, ts, ts, ns, ns, a.Scope.Type, a.Scope.Name, a.Namespace, a.Name)
	}
	pick += fmt.Sprintf(" ORDER BY %s LIMIT %d", historyOrder, q.Limit)
	rng, rargs := s.rangeSQL(q.HistoryFilter)
	// PREWHERE: the page's few sequences are found from the seq column
	// alone; only their granules are then read in full (message, rest).
	// With WHERE, 18.16 reads every column of the tenant's range first.
	sql := "SELECT " + columnNames() + " FROM " + s.table() + " PREWHERE seq " + s.globalIn() + " (" + pick + ") WHERE " + rng +
		" ORDER BY " + historyOrder + " LIMIT 1 BY seq"
	return sql, append(margs, rargs...), nil
}

// QueryHistory returns one page of q: the latest state of each matching
// event, newest last observation first, each event once.
func (s *Store) QueryHistory(ctx context.Context, q HistoryQuery, l Limits) ([]HistoryRecord, error) {
	if q.AtSeq == 0 {
		return nil, nil
	}
	sql, args, err := s.historySQL(q)
	if err != nil {
		return nil, fmt.Errorf("query history: %w", err)
	}
	qctx, cancel := limitContext(ctx, l)
	defer cancel()
	recs, err := s.queryHistoryRows(qctx, sql, args...)
	if err != nil {
		return nil, classify(qctx, "query history", err)
	}
	return recs, nil
}

// queryHistoryRows is query that also keeps each row's exact last
// observation, the history cursor's key.
func (s *Store) queryHistoryRows(ctx context.Context, sql string, args ...any) ([]HistoryRecord, error) {
	var out []HistoryRecord
	err := s.eachRecord(ctx, sql, args, func(r *Row, rec *eventlog.Record) {
		out = append(out, HistoryRecord{Record: rec, LastTime: r.LastTime.UTC().Add(time.Duration(r.LastNanos))})
	})
	return out, err
}

// Facets are the fields EventFacetQuery counts, and the SQL expression of
// each. source.component falls back to reportingController, as the
// "source" field selector does, so events.k8s.io writers are counted.
var Facets = map[string]string{
	"regarding.kind":      "involved_kind",
	"regarding.namespace": "involved_namespace",
	"namespace":           "namespace",
	"reason":              "reason",
	"type":                "type",
	"source.component":    "if(source_component != '', source_component, reporting_controller)",
	"related.kind":        "related_kind",
	"related.namespace":   "related_namespace",
}

// FacetNames returns the keys of Facets in a fixed order (the documented
// one).
func FacetNames() []string {
	return []string{"regarding.kind", "regarding.namespace", "namespace", "reason", "type", "source.component", "related.kind", "related.namespace"}
}

// FacetValue is one value of a facet and the number of distinct events
// with it.
type FacetValue struct {
	Value string
	Count uint64
}

// facetSQL counts, per facet, the distinct matching events per non-empty
// value, the limit most frequent first (ties by value). Facet names are
// keys of Facets, never caller text.
func (s *Store) facetSQL(f HistoryFilter, facets []string, limit int) (string, []any, error) {
	if len(facets) == 0 || limit <= 0 {
		return "", nil, errors.New("facet query: want facets and a positive limit")
	}
	var names, exprs []string
	for _, name := range facets {
		e, ok := Facets[name]
		if !ok {
			return "", nil, fmt.Errorf("facet query: unknown facet %q", name)
		}
		names = append(names, "'"+name+"'")
		exprs = append(exprs, e)
	}
	matched, args, err := s.matchedSQL(f, exprs...)
	if err != nil {
		return "", nil, err
	}
	// ARRAY JOIN of two arrays pairs them element by element: one row per
	// (event, facet), so each event counts once per facet.
	q := "SELECT facet, value, count() AS n FROM (" + matched + ")" +
		" ARRAY JOIN [" + strings.Join(names, ", ") + "] AS facet, [" + strings.Join(exprs, ", ") + "] AS value" +
		" WHERE value != '' GROUP BY facet, value ORDER BY facet, n DESC, value" +
		fmt.Sprintf(" LIMIT %d BY facet", limit)
	return q, args, nil
}

// histogramSQL counts matching events per bucket of bucket (whole seconds)
// from Start: bucket i holds last observations in [Start+i*b, Start+(i+1)*b).
func (s *Store) histogramSQL(f HistoryFilter, bucket time.Duration) (string, []any, error) {
	secs := int64(bucket / time.Second)
	if secs <= 0 {
		return "", nil, fmt.Errorf("histogram: bucket must be at least 1s, got %s", bucket)
	}
	matched, args, err := s.matchedSQL(f)
	if err != nil {
		return "", nil, err
	}
	// Whole seconds from the window's start second: the same origin
	// BucketCount uses.
	q := "SELECT toInt64(intDiv(toInt64(toUInt32(last_ts)) - ?, ?)) AS b, count() AS n FROM (" + matched + ") GROUP BY b ORDER BY b"
	return q, append([]any{f.Start.UTC().Unix(), secs}, args...), nil
}

// BucketCount is how many buckets of size bucket cover [start, end) when
// the first begins at start's whole second (at least one).
func BucketCount(start, end time.Time, bucket time.Duration) int {
	span := end.Sub(start.Truncate(time.Second))
	return max(int((span+bucket-1)/bucket), 1)
}

// FacetResult is the answer of QueryFacets.
type FacetResult struct {
	// Facets maps each requested facet to its values.
	Facets map[string][]FacetValue
	// Buckets[i] counts the events of bucket i; len(Buckets) covers the
	// whole window.
	Buckets []uint64
	// Total counts every matching event.
	Total uint64
}

// QueryFacets counts, over f, the values of facets (at most limit each) and
// the events per bucket.
func (s *Store) QueryFacets(ctx context.Context, f HistoryFilter, facets []string, limit int, bucket time.Duration, l Limits) (*FacetResult, error) {
	secs := int64(bucket / time.Second)
	if secs <= 0 {
		return nil, fmt.Errorf("query facets: bucket must be at least 1s, got %s", bucket)
	}
	n := BucketCount(f.Start, f.End, bucket)
	res := &FacetResult{Facets: map[string][]FacetValue{}, Buckets: make([]uint64, n)}
	if f.AtSeq == 0 {
		return res, nil
	}
	qctx, cancel := limitContext(ctx, l)
	defer cancel()
	if len(facets) > 0 {
		sql, args, err := s.facetSQL(f, facets, limit)
		if err != nil {
			return nil, fmt.Errorf("query facets: %w", err)
		}
		rows, err := s.conn.Query(qctx, sql, args...)
		if err != nil {
			return nil, classify(qctx, "query facets", err)
		}
		for rows.Next() {
			var name string
			var v FacetValue
			if err := rows.Scan(&name, &v.Value, &v.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("query facets: scan: %w", err)
			}
			res.Facets[name] = append(res.Facets[name], v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, classify(qctx, "query facets", err)
		}
	}
	sql, args, err := s.histogramSQL(f, bucket)
	if err != nil {
		return nil, fmt.Errorf("query histogram: %w", err)
	}
	rows, err := s.conn.Query(qctx, sql, args...)
	if err != nil {
		return nil, classify(qctx, "query histogram", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var c uint64
		if err := rows.Scan(&b, &c); err != nil {
			return nil, fmt.Errorf("query histogram: scan: %w", err)
		}
		if b < 0 || b >= int64(len(res.Buckets)) {
			return nil, fmt.Errorf("query histogram: BUG: bucket %d outside 0..%d", b, len(res.Buckets)-1)
		}
		res.Buckets[b] = c
		res.Total += c
	}
	if err := rows.Err(); err != nil {
		return nil, classify(qctx, "query histogram", err)
	}
	return res, nil
}
