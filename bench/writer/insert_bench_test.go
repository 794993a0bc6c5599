package writerbench

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventpipe/eventpipe/bench/internal/procstat"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// BenchmarkClickHouseInsert is what clickhouse-server spends per event
// state for the writer's insert size: the corpus's states (200,000 by
// default, b.N ignored) inserted in batches of 1,000 to 50,000 rows, one
// batch at a time, into a fresh server. insert-µs/row is the server's CPU
// while the inserts run (with the background merges they start);
// final-µs/row also counts merging each day partition down to one part, the
// state background merges head for, so it is what the data costs in the
// long run. merged-rows/row counts how often a row was rewritten by merges
// during the inserts. The writer's batch is whatever arrived within
// --writer.batch-wait, up to --writer.batch-size (bench/README.md).
func BenchmarkClickHouseInsert(b *testing.B) {
	rows := insertCorpus(b, 200_000)
	for _, size := range []int{1_000, 3_000, 10_000, 50_000} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b)
			pid := e.ch.PID()
			merged0 := e.mergedRows(ctx, b)
			c0, err := procstat.ProcessCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < len(rows); i += size {
				if err := e.store.Insert(ctx, rows[i:min(i+size, len(rows))]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c1, err := procstat.ProcessCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			merged := e.mergedRows(ctx, b) - merged0
			if _, _, err := e.diskUsage(ctx); err != nil {
				b.Fatal(err)
			}
			c2, err := procstat.ProcessCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			n := float64(len(rows))
			b.ReportMetric(perEvent(c1-c0, n), "insert-µs/row")
			b.ReportMetric(perEvent(c2-c0, n), "final-µs/row")
			b.ReportMetric(float64(merged)/n, "merged-rows/row")
		})
	}
}

// insertCorpus is n corpus states as the writer's rows.
func insertCorpus(b *testing.B, n int) []chstore.Row {
	c, err := buildCorpus(n)
	if err != nil {
		b.Fatal(err)
	}
	stored := corpusStart
	rows := make([]chstore.Row, 0, n)
	for i, m := range c.msgs {
		r, err := eventlog.DecodeMsg(m.Subject, m.Header, m.Data, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		stored = stored.Add(clockStep)
		row, err := chstore.EncodeRow(r, stored)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

// mergedRows is clickhouse-server's count of rows written by merges so far.
func (e *env) mergedRows(ctx context.Context, b *testing.B) uint64 {
	var n uint64
	err := e.store.Conn().QueryRow(ctx, "SELECT sum(value) FROM system.events WHERE event = 'MergedRows'").Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
