package lease

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

const ttl = 2 * time.Second

func newLease(t *testing.T, js jetstream.JetStream, id string) (*Lease, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := Ensure(context.Background(), js, Config{Bucket: "T_LEASES", Key: "writer", Identity: id, TTL: ttl, MetricPrefix: "t"}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, reg
}

// replica runs a lease in the background and records whether its work
// runs; stop ends it.
type replica struct {
	l       *Lease
	active  atomic.Bool
	started chan time.Time
	stop    context.CancelFunc
	done    chan error
}

func run(t *testing.T, l *Lease) *replica {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{l: l, started: make(chan time.Time, 10), stop: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- l.Run(ctx, func(ctx context.Context) error {
			r.active.Store(true)
			r.started <- time.Now()
			<-ctx.Done()
			r.active.Store(false)
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("lease %s: %v", l.Identity(), err)
		}
	})
	return r
}

func waitStarted(t *testing.T, r *replica, within time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-r.started:
		return at
	case <-time.After(within):
		t.Fatalf("%s did not become active within %s", r.l.Identity(), within)
		return time.Time{}
	}
}

// TestOneHolderAndHandOverOnRelease: of two replicas exactly one works; a
// graceful stop releases the key and the standby takes over at once, not
// after the TTL.
func TestOneHolderAndHandOverOnRelease(t *testing.T) {
	s := natstest.ForTest(t)
	a, regA := newLease(t, s.JS, "a")
	b, _ := newLease(t, s.JS, "b")
	ra := run(t, a)
	waitStarted(t, ra, 5*time.Second)
	rb := run(t, b)
	// b stands by while a renews the key past its TTL: six renewals (one
	// every fifth of the TTL), counted by the key's revision.
	ctx := context.Background()
	revision := func() uint64 {
		e, err := a.kv.Get(ctx, a.cfg.Key)
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	from := revision()
	testenv.WaitFor(t, "six renewals by a", 3*ttl, func() (bool, string) {
		if rb.active.Load() || b.Held() == nil {
			t.Fatal("b became active while a holds the lease")
		}
		if a.Held() != nil {
			t.Fatal("a lost its lease while renewing")
		}
		n := revision() - from
		return n >= 6, fmt.Sprintf("%d renewals", n)
	})
	if v := testutil.ToFloat64(a.leader); v != 1 {
		t.Fatalf("a's leader gauge %v, want 1", v)
	}
	stoppedAt := time.Now()
	ra.stop()
	if err := <-ra.done; err != nil {
		t.Fatal(err)
	}
	ra.done <- nil // for the cleanup
	took := waitStarted(t, rb, ttl).Sub(stoppedAt)
	if took > ttl/2 {
		t.Fatalf("b took over %s after a's graceful stop; want well under the TTL %s", took, ttl)
	}
	if n, err := testutil.GatherAndCount(regA, "t_lease_transitions_total"); err != nil || n != 1 {
		t.Fatalf("metrics: %d %v", n, err)
	}
	if v := testutil.ToFloat64(a.transitions); v != 2 {
		t.Fatalf("a's transitions %v, want 2 (took, released)", v)
	}
}

// TestCrashedHolderIsFencedBeforeTakeover: a holder cut off from NATS (as
// a paused or partitioned process is) stops trusting its lease before the
// key expires, so that it has stopped committing before the standby takes
// over; the standby takes over within the TTL and two renewal periods.
func TestCrashedHolderIsFencedBeforeTakeover(t *testing.T) {
	s := natstest.ForTest(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	jsA, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newLease(t, jsA, "a")
	b, _ := newLease(t, s.JS, "b")
	ra := run(t, a)
	waitStarted(t, ra, 5*time.Second)
	rb := run(t, b)
	// a's last renewal happened at most a renewal period ago.
	cutAt := time.Now()
	nc.Close()
	var fencedAt time.Time
	var takenAt time.Time
	// Until b takes over, sample a's trust in its lease every 10 ms: the
	// order of the two is what the test checks.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * ttl)
wait:
	for {
		if fencedAt.IsZero() && errors.Is(a.Held(), ErrLost) {
			fencedAt = time.Now()
		}
		select {
		case takenAt = <-rb.started:
			break wait
		case <-deadline:
			break wait
		case <-tick.C:
		}
	}
	if takenAt.IsZero() {
		t.Fatalf("b did not take over within %s of a's crash", 3*ttl)
	}
	if fencedAt.IsZero() || !fencedAt.Before(takenAt) {
		t.Fatalf("a fenced at %v, b took over at %v: a must stop trusting the lease first", fencedAt, takenAt)
	}
	if d := takenAt.Sub(cutAt); d > ttl+2*ttl/5+time.Second {
		t.Fatalf("takeover took %s after the crash; want at most TTL + two renewal periods", d)
	}
	t.Logf("a fenced %s after the cut; b active %s after it", fencedAt.Sub(cutAt), takenAt.Sub(cutAt))
}
