package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

func auditNames(recs []chstore.AuditRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.AuditID+"/"+r.Stage)
	}
	return out
}

// TestAudit runs the audit queries on ClickHouse 18.16 over the native
// protocol; TestModernClickHouseAudit runs the same on 26.7.
func TestAudit(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	rows := chstore.AuditFixture()
	require.NoError(t, s.InsertAudit(ctx, rows))
	require.NoError(t, s.InsertAudit(ctx, rows[:4]), "the indexer sends a batch again after an error")
	require.NoError(t, s.InsertAudit(ctx, nil))

	for _, c := range chstore.AuditCases() {
		t.Run(c.Name, func(t *testing.T) {
			got, err := s.QueryAudit(ctx, c.Q, chstore.Limits{MaxRowsToRead: 1_000_000, MaxExecutionTime: 10 * time.Second})
			require.NoError(t, err)
			require.Equal(t, c.Want, auditNames(got))
			q := c.Q
			q.After, q.Limit = nil, 0
			n, err := s.CountAudit(ctx, q, chstore.Limits{})
			require.NoError(t, err)
			if c.Q.After == nil && c.Q.Limit >= 100 {
				require.EqualValues(t, len(c.Want), n, "count agrees with the records")
			}
		})
	}

	// Every field comes back as stored.
	q := chstore.AuditCases()[0].Q
	q.Verbs, q.Stages = []string{"patch"}, nil
	got, err := s.QueryAudit(ctx, q, chstore.Limits{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	want := rows[4]
	require.Equal(t, want, got[0].AuditRow)
	require.Equal(t, want.RequestTime.Add(time.Duration(want.RequestNanos)), got[0].Key.RequestTime)

	// Pages of two cover every record once, in order.
	var pages []string
	q = chstore.AuditCases()[0].Q
	q.Limit = 2
	for {
		page, err := s.QueryAudit(ctx, q, chstore.Limits{})
		require.NoError(t, err)
		pages = append(pages, auditNames(page)...)
		if len(page) < 2 {
			break
		}
		q.After = &page[len(page)-1].Key
	}
	require.Equal(t, chstore.AuditCases()[0].Want, pages)

	// A row limit is reported as ErrTooManyRows.
	_, err = s.QueryAudit(ctx, chstore.AuditCases()[0].Q, chstore.Limits{MaxRowsToRead: 1})
	require.ErrorIs(t, err, chstore.ErrTooManyRows)
}
