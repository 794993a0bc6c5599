package event

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/registry/listquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// TestFieldConds: the store is given the conditions it has columns for;
// the others are left to the registry's match in memory.
func TestFieldConds(t *testing.T) {
	got := fieldConds([]listquery.Cond{
		{Field: "type", Value: "Warning"},
		{Field: "series.count", Value: "2"},
		{Field: "reason", Not: true, Value: "BackOff"},
	})
	require.Equal(t, []chstore.FieldCond{{Field: "type", Value: "Warning"}, {Field: "reason", Not: true, Value: "BackOff"}}, got)
	require.Nil(t, fieldConds(nil))
}
