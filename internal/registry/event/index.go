package event

import (
	"context"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/listquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// ClickHouseIndex is the Index of a ClickHouse store: it translates the
// registry's queries into the store's. The store is embedded, so what else
// it serves (history queries) is still reachable through the Index.
type ClickHouseIndex struct {
	*chstore.Store
}

var _ Index = ClickHouseIndex{}

// List implements Index. Conditions on fields the store has no column for
// are left to the registry's match in memory.
func (x ClickHouseIndex) List(ctx context.Context, q ListQuery) ([]*eventlog.Record, error) {
	lq := chstore.ListQuery{LatestFilter: latestFilter(q.LatestFilter), Conds: fieldConds(q.Conds), Limit: q.Limit}
	if q.After != nil {
		lq.After = &chstore.Cursor{Namespace: q.After.Namespace, Name: q.After.Name, Scope: q.After.Scope}
	}
	return x.Store.List(ctx, lq)
}

// CountLatest implements Index.
func (x ClickHouseIndex) CountLatest(ctx context.Context, f LatestFilter) (uint64, error) {
	return x.Store.CountLatest(ctx, latestFilter(f))
}

func latestFilter(f LatestFilter) chstore.LatestFilter {
	return chstore.LatestFilter{Scope: f.Scope, Namespace: f.Namespace, Since: f.Since, AtSeq: f.AtSeq}
}

// fieldConds returns the conditions on fields the store can filter.
func fieldConds(conds []listquery.Cond) []chstore.FieldCond {
	var out []chstore.FieldCond
	for _, c := range conds {
		if _, ok := chstore.FieldColumns[c.Field]; ok {
			out = append(out, chstore.FieldCond{Field: c.Field, Not: c.Not, Value: c.Value})
		}
	}
	return out
}
