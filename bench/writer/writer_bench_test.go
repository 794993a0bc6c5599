// Package writerbench measures the writer path of issue #2: event states in
// the JetStream EVENTS stream moved into ClickHouse by internal/writer, with
// the realistic events of internal/generator. bench/README.md has the
// command and the recorded numbers.
package writerbench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/writer"
)

var (
	natsMode = flag.String("writerbench.nats", "embedded",
		"where JetStream runs: embedded (in the benchmark's process, as in `eventpipe dev`) or process (a child process, as an external JetStream in production)")
	showColumns = flag.Bool("writerbench.columns", false,
		"log the compressed and raw bytes per event of every column of the events table after each run")
	cpuProfile = flag.String("writerbench.cpuprofile", "",
		"write a CPU profile of the timed part of each variant's last run to PREFIX.<variant>.prof (go test's -cpuprofile also covers the set-up)")
)

func TestMain(m *testing.M) {
	// The same binary is the JetStream child of -writerbench.nats=process.
	if dir := os.Getenv(natsChildEnv); dir != "" {
		os.Exit(runNATSChild(dir))
	}
	code := m.Run()
	chtest.StopSharedCluster() // BenchmarkWriterCluster's
	os.Exit(code)
}

// BenchmarkWriterPath times internal/writer moving b.N realistic event states
// from JetStream into ClickHouse with its default configuration (batches of
// 10,000). One op is one event state, so ns/op is the wall time per state and
// MB/s counts stream payload (protobuf) bytes. Run it with a fixed
// -benchtime such as 500000x: the drain must span many batches to measure a
// rate rather than one batch's latency.
//
//   - backlog: the states are published before the timer starts, then the
//     writer drains them: the writer's ceiling, as after a ClickHouse outage.
//   - concurrent: a publisher and the writer run at the same time on the
//     same cores, as in production; the timer runs from the first publish to
//     the watermark covering the last state: the sustained end-to-end rate.
//
// Besides events/s, each run reports disk-B/event (ClickHouse bytes on disk
// per stored state after OPTIMIZE … FINAL), json-B/event (the events' mean
// size as Kubernetes JSON: the target is stated for 700–1,500-byte events),
// the CPU each process spent per event, the share of the writer's time spent
// inside Store.Insert, and other-cores, the CPU that the rest of the machine
// used meanwhile: a run with other-cores well above zero shared the machine
// and does not measure this code.
func BenchmarkWriterPath(b *testing.B) {
	b.Run("backlog", func(b *testing.B) { benchWriterPath(b, false) })
	b.Run("concurrent", func(b *testing.B) { benchWriterPath(b, true) })
}

func benchWriterPath(b *testing.B, concurrent bool) {
	ctx := context.Background()
	e := newEnv(b)
	c, err := buildCorpus(b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(c.bodyBytes / int64(b.N))
	b.ReportAllocs()

	ins := &timedInserter{Inserter: e.store}
	w := writer.New(e.js, ins, writer.DefaultConfig(), eventlog.DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	var clk *clock
	var pubElapsed time.Duration
	var last uint64

	if concurrent {
		// The writer is waiting on an empty stream when the clock starts, as
		// a deployed writer would be.
		go func() { runDone <- w.Run(runCtx) }()
		clk = e.startClock(b)
		last, err = e.publish(ctx, c.msgs, c.ids)
		pubElapsed = time.Since(clk.start)
		if err == nil {
			err = waitFor(ctx, w, last)
		}
	} else {
		last, err = e.publish(ctx, c.msgs, c.ids)
		if err != nil {
			b.Fatal(err)
		}
		// The writer's heap should hold the writer's work, not the corpus.
		c.msgs, c.ids = nil, nil
		runtime.GC()
		clk = e.startClock(b)
		go func() { runDone <- w.Run(runCtx) }()
		err = waitFor(ctx, w, last)
	}
	m, clkErr := e.stopClock(b, clk)
	cancel()
	if runErr := <-runDone; runErr != nil && err == nil {
		err = fmt.Errorf("run writer: %w", runErr)
	}
	if err == nil {
		err = clkErr
	}
	if err != nil {
		b.Fatal(err)
	}
	if last != uint64(b.N) {
		b.Fatalf("stream holds %d states, want %d: a message id was not unique", last, b.N)
	}

	n := float64(b.N)
	b.ReportMetric(n/m.elapsed.Seconds(), "events/s")
	if concurrent {
		b.ReportMetric(n/pubElapsed.Seconds(), "pub-events/s")
	}
	// Where the CPU went: this process (the writer, the publisher when
	// concurrent, and JetStream when embedded), the JetStream child process,
	// and clickhouse-server.
	b.ReportMetric(perEvent(m.cpu.self, n), "self-cpu-µs/event")
	if e.natsPID != 0 {
		b.ReportMetric(perEvent(m.cpu.nats, n), "nats-cpu-µs/event")
	}
	b.ReportMetric(perEvent(m.cpu.ch, n), "ch-cpu-µs/event")
	b.ReportMetric(m.cpu.others.Seconds()/m.elapsed.Seconds(), "other-cores")
	b.ReportMetric(time.Duration(ins.spent.Load()).Seconds()/m.elapsed.Seconds(), "insert-share")
	b.ReportMetric(float64(c.jsonBytes)/n, "json-B/event")

	rows, diskBytes, err := e.diskUsage(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if rows != uint64(b.N) {
		b.Fatalf("events table holds %d rows after OPTIMIZE FINAL, want %d", rows, b.N)
	}
	b.ReportMetric(float64(diskBytes)/float64(rows), "disk-B/event")
	if *showColumns {
		if err := e.logColumns(ctx, b, rows); err != nil {
			b.Fatal(err)
		}
	}
}

func perEvent(d time.Duration, n float64) float64 { return float64(d.Microseconds()) / n }

// timedInserter adds up the time the writer spends in Insert: building the
// columns, sending them, and waiting for ClickHouse to commit.
type timedInserter struct {
	writer.Inserter
	spent atomic.Int64 // nanoseconds
}

func (t *timedInserter) Insert(ctx context.Context, rows []chstore.Row) error {
	start := time.Now()
	err := t.Inserter.Insert(ctx, rows)
	t.spent.Add(int64(time.Since(start)))
	return err
}

// waitFor waits until the writer's watermark covers seq. The bound only
// keeps a stuck writer from hanging the run; it is not part of the measure.
func waitFor(ctx context.Context, w *writer.Writer, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if err := w.WaitFor(ctx, seq); err != nil {
		return fmt.Errorf("wait for watermark %d (at %d): %w", seq, w.Watermark(), err)
	}
	return nil
}
