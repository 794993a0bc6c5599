package writerbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// env is one run's private ClickHouse and JetStream.
type env struct {
	ch      *chserver.Server
	store   *chstore.Store
	js      jetstream.JetStream // the writer's
	url     string
	natsPID int // the JetStream child process; 0 when embedded
}

func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := context.Background()
	ch := chtest.ForTest(b)
	cfg := chstore.DefaultConfig()
	cfg.Addr = ch.Addr
	store, err := chstore.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	e := &env{ch: ch, store: store}
	switch *natsMode {
	case "embedded":
		ns := natstest.ForTest(b)
		e.js, e.url = ns.JS, ns.ClientURL()
	case "process":
		e.url, e.natsPID = startNATSChild(b)
		nc, err := nats.Connect(e.url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		if e.js, err = jetstream.New(nc); err != nil {
			b.Fatal(err)
		}
	default:
		b.Fatalf("-writerbench.nats=%q: want embedded or process", *natsMode)
	}
	if err := eventlog.Ensure(ctx, e.js, eventlog.DefaultConfig()); err != nil {
		b.Fatal(err)
	}
	return e
}

// natsChildEnv names the store directory of a JetStream child process; its
// presence is what makes the test binary one.
const natsChildEnv = "EVENTPIPE_WRITERBENCH_NATS_DIR"

// startNATSChild runs this test binary as a JetStream server in its own
// process, with its own heap and garbage collector, as production runs an
// external JetStream. It returns the client URL and the process id.
func startNATSChild(b *testing.B) (string, int) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), natsChildEnv+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	// The child stops when its stdin closes, and dies with the benchmark.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start JetStream child: %v", err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("start JetStream child: read its URL: %v", err)
	}
	return strings.TrimSpace(url), cmd.Process.Pid
}

// runNATSChild is the JetStream child process: it prints the client URL and
// serves until its stdin closes.
func runNATSChild(dir string) int {
	s, err := natsserver.Start(natsserver.Options{StoreDir: dir, Port: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// maxPubPending bounds the publishes in flight: about what a busy API server
// has outstanding; more only grows the publisher's memory.
const maxPubPending = 4096

// pubStallWait is how long one publish may wait for room among the pending.
// The default 200ms is too short when two cores are shared with ClickHouse:
// the publisher must not give up while JetStream is merely slow.
const pubStallWait = 30 * time.Second

// publish sends msgs, with ids as their Nats-Msg-Id, by asynchronous
// publishes on a connection of its own (the API server is another process),
// and returns the stream sequence of the last one once every publish is
// acknowledged.
func (e *env) publish(ctx context.Context, msgs []*nats.Msg, ids []string) (uint64, error) {
	nc, err := nats.Connect(e.url)
	if err != nil {
		return 0, fmt.Errorf("connect publisher: %w", err)
	}
	defer nc.Close()
	var (
		mu       sync.Mutex
		firstErr error // guarded by mu
		last     atomic.Uint64
		dups     atomic.Int64
	)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPubPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			mu.Lock()
			defer mu.Unlock()
			if firstErr == nil {
				firstErr = fmt.Errorf("publish %s: %w", m.Subject, err)
			}
		}),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
			if ack.Duplicate {
				dups.Add(1)
			}
			for {
				cur := last.Load()
				if ack.Sequence <= cur || last.CompareAndSwap(cur, ack.Sequence) {
					break
				}
			}
		}))
	if err != nil {
		return 0, fmt.Errorf("open publisher: %w", err)
	}
	for i, m := range msgs {
		// The options of eventlog.Publisher, plus the stall wait.
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(ids[i]), jetstream.WithExpectStream(eventlog.StreamName),
			jetstream.WithStallWait(pubStallWait)); err != nil {
			return 0, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for publish acknowledgements: %w", ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return 0, firstErr
	}
	if n := dups.Load(); n > 0 {
		return 0, fmt.Errorf("publish: %d messages were taken for duplicates", n)
	}
	return last.Load(), nil
}

// diskUsage merges the events table to its final form, as background merges
// eventually do, and returns the rows and bytes on disk of its active parts.
// Each partition is optimized by name, since on 18.16 OPTIMIZE … FINAL
// without a partition merges only one of them, and again while it has more
// than one part, since an OPTIMIZE that meets a background merge does
// nothing.
func (e *env) diskUsage(ctx context.Context) (rows, bytes uint64, err error) {
	table := "`" + e.store.Database() + "`.events"
	for attempt := 0; ; attempt++ {
		parts, err := e.activeParts(ctx)
		if err != nil {
			return 0, 0, err
		}
		merged := true
		for id, n := range parts {
			if n == 1 {
				continue
			}
			merged = false
			if attempt == 60 {
				return 0, 0, fmt.Errorf("optimize events table: partition %s still has %d parts", id, n)
			}
			if err := e.store.Conn().Exec(ctx, "OPTIMIZE TABLE "+table+" PARTITION ID '"+id+"' FINAL"); err != nil {
				return 0, 0, fmt.Errorf("optimize partition %s of the events table: %w", id, err)
			}
		}
		if merged {
			return e.store.DiskUsage(ctx)
		}
		if attempt > 0 {
			time.Sleep(time.Second)
		}
	}
}

// activeParts returns the number of active parts of each partition of the
// events table.
func (e *env) activeParts(ctx context.Context) (map[string]uint64, error) {
	r, err := e.store.Conn().Query(ctx, "SELECT partition_id, count() FROM system.parts"+
		" WHERE active AND database = ? AND table = 'events' GROUP BY partition_id", e.store.Database())
	if err != nil {
		return nil, fmt.Errorf("list parts of the events table: %w", err)
	}
	defer r.Close()
	parts := map[string]uint64{}
	for r.Next() {
		var id string
		var n uint64
		if err := r.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("list parts of the events table: %w", err)
		}
		parts[id] = n
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("list parts of the events table: %w", err)
	}
	return parts, nil
}

// logColumns logs what each column costs per event on disk, and before
// compression.
func (e *env) logColumns(ctx context.Context, b *testing.B, rows uint64) error {
	r, err := e.store.Conn().Query(ctx,
		"SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns"+
			" WHERE database = ? AND table = 'events' ORDER BY data_compressed_bytes DESC", e.store.Database())
	if err != nil {
		return fmt.Errorf("read column sizes: %w", err)
	}
	defer r.Close()
	for r.Next() {
		var name string
		var comp, raw uint64
		if err := r.Scan(&name, &comp, &raw); err != nil {
			return fmt.Errorf("read column sizes: %w", err)
		}
		b.Logf("%-26s %6.1f B/event on disk %6.1f B/event raw", name, float64(comp)/float64(rows), float64(raw)/float64(rows))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read column sizes: %w", err)
	}
	return nil
}
