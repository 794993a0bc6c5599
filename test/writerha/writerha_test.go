// Package writerha runs two and three `eventpipe writer` processes on one
// JetStream and one ClickHouse and checks that the writer lease keeps
// exactly one of them active: kill -9 of the active one fails over within
// 15 s, a paused one that lost the lease stops committing, and across it
// all every acknowledged state is in ClickHouse exactly once (issue 18,
// item 3).
package writerha

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// failoverBudget is the bound from kill -9 of the active writer to
// the standby committing.
const failoverBudget = 15 * time.Second

var haScope = scope.Scope{Type: scope.TypeProject, Name: "writer-ha"}

// load publishes new events to EVENTS at about rate per second, each under
// its own message id, retrying failed publishes until they are stored, and
// remembers every acknowledged sequence.
type load struct {
	pub  *eventlog.Publisher
	mu   sync.Mutex
	seqs map[string]uint64 // event name -> acknowledged sequence
	n    int
}

func (l *load) run(ctx context.Context, t *testing.T, rate int) {
	const tick = 10 * time.Millisecond
	per := max(1, rate/int(time.Second/tick))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		recs := make([]*eventlog.Record, per)
		ids := make([]string, per)
		for i := range recs {
			name := fmt.Sprintf("ev-%07d", l.n)
			l.n++
			recs[i] = &eventlog.Record{Key: eventlog.Key{Scope: haScope, Namespace: "default", Name: name}, Op: eventlog.OpCreate,
				Event: eventtest.BackOff("default", name, 1, time.Now())}
			ids[i] = "ha-" + name
		}
		for {
			err := l.pub.PublishAll(context.Background(), recs, ids)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				// Stopped mid-retry: what was not acknowledged is not counted.
				l.record(recs)
				return
			}
			t.Logf("publish: %v; retrying", err)
			time.Sleep(100 * time.Millisecond)
		}
		l.record(recs)
	}
}

func (l *load) record(recs []*eventlog.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if r.Seq != 0 {
			l.seqs[r.Key.Name] = r.Seq
		}
	}
}

func (l *load) maxSeq() (uint64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m uint64
	for _, s := range l.seqs {
		m = max(m, s)
	}
	return m, len(l.seqs)
}

func TestWriterFailover(t *testing.T) {
	ns := natstest.ForTest(t)
	ch := chtest.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := eventlog.Ensure(ctx, ns.JS, eventlog.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	args := []string{"--nats.url", ns.ClientURL(), "--clickhouse.addr", ch.Addr, "--writer.batch-wait", "100ms"}

	a := startWriter(t, "a", args...)
	a.waitFor("active", time.Minute, a.isLeader)
	// b starts once a has migrated the schema: migrations are not meant to
	// run from two processes at once (the chart runs them in a Job).
	b := startWriter(t, "b", append(args, "--clickhouse.migrate=false")...)
	b.waitFor("standing by", time.Minute, func() bool { return b.isStandby() && b.Logged("standing by") })

	l := &load{pub: eventlog.NewPublisher(ns.JS), seqs: map[string]uint64{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); l.run(loadCtx, t, 1000) }()
	defer func() { stopLoad(); <-loadDone }()

	// a commits under load.
	a.waitFor("committing", 30*time.Second, func() bool {
		v, _ := a.metric("eventpipe_writer_watermark")
		return v > 1000
	})
	if b.isLeader() {
		t.Fatal("b is active while a is")
	}

	// kill -9 the active writer; b must take over and commit within the budget.
	killedAt := time.Now()
	atKill, _ := l.maxSeq()
	a.Kill()
	b.waitFor("active", failoverBudget, b.isLeader)
	tookAt := time.Now()
	b.waitFor("committing past the kill", failoverBudget, func() bool {
		v, _ := b.metric("eventpipe_writer_watermark")
		return v > float64(atKill)
	})
	committedAt := time.Now()
	failover := committedAt.Sub(killedAt)
	t.Logf("failover: b took the lease %s after kill -9 of a, committed past the kill %s after it",
		tookAt.Sub(killedAt).Round(time.Millisecond), failover.Round(time.Millisecond))
	if failover > failoverBudget {
		t.Fatalf("failover took %s, want at most %s", failover, failoverBudget)
	}

	// a comes back and stands by.
	a.Start()
	a.waitFor("standing by after restart", time.Minute, func() bool { return a.isStandby() && b.isLeader() })

	// Pause b (SIGSTOP) past its lease: a takes over; when b continues it
	// finds its lease gone and stops before committing anything more.
	b.Signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	a.waitFor("active while b is paused", failoverBudget+5*time.Second, a.isLeader)
	t.Logf("b paused: a took over after %s", time.Since(stoppedAt).Round(time.Millisecond))
	b.Signal(syscall.SIGCONT)
	b.waitFor("aware it lost the lease", 30*time.Second, func() bool { return b.isStandby() && b.Logged("lost the lease") })
	if !a.isLeader() {
		t.Fatal("a is no longer active after b continued")
	}

	// Stop the load and wait until everything acknowledged is committed.
	stopLoad()
	<-loadDone
	last, n := l.maxSeq()
	kv, err := ns.JS.KeyValue(ctx, eventlog.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the watermark at the last acknowledged sequence", time.Minute, func() (bool, string) {
		wm, err := eventlog.ReadMark(ctx, kv, eventlog.WatermarkKey)
		return err == nil && wm >= last, fmt.Sprintf("watermark %d (%v), last acknowledged %d", wm, err, last)
	})
	checkExactlyOnce(ctx, t, ch.Addr, l)
	t.Logf("%d acknowledged creates, all in ClickHouse once", n)
}

// checkExactlyOnce compares ClickHouse's events of haScope, as readers see
// them (FINAL), with the acknowledged states: none missing, none twice,
// each at its acknowledged sequence.
func checkExactlyOnce(ctx context.Context, t *testing.T, addr string, l *load) {
	t.Helper()
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Migrate = addr, false
	s, err := chstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.Conn().Query(ctx, "SELECT name, seq FROM "+cfg.Database+".events FINAL WHERE scope_name = ?", haScope.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]int{}
	l.mu.Lock()
	defer l.mu.Unlock()
	var wrong []string
	for rows.Next() {
		var name string
		var seq uint64
		if err := rows.Scan(&name, &seq); err != nil {
			t.Fatal(err)
		}
		seen[name]++
		if want, ok := l.seqs[name]; ok && want != seq && len(wrong) < 10 {
			wrong = append(wrong, fmt.Sprintf("%s at %d, acknowledged at %d", name, seq, want))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lost, doubled []string
	for name := range l.seqs {
		if seen[name] == 0 && len(lost) < 10 {
			lost = append(lost, name)
		}
	}
	for name, c := range seen {
		if c > 1 && len(doubled) < 10 {
			doubled = append(doubled, name)
		}
	}
	if len(lost)+len(doubled)+len(wrong) > 0 {
		t.Fatalf("ClickHouse vs %d acknowledged: lost %v, doubled %v, wrong sequence %v", len(l.seqs), lost, doubled, wrong)
	}
	var raw uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".events WHERE scope_name = ?", haScope.Name).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse: %d events once each (%d physical rows before merges: replayed batches fold away)", len(seen), raw)
}
