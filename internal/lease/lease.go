// Package lease elects one holder among the replicas of a role through a
// key in a JetStream key-value bucket whose entries expire after a TTL
// (the bucket's MaxAge). The holder renews the key well inside the TTL; a
// standby takes the key when it has expired. Every write is a
// compare-and-set on the key's revision (KV Create, or Update with the
// revision last seen), so two replicas can never both succeed in taking or
// renewing it: the second write finds a revision it did not expect.
//
// A holder only trusts its lease until the TTL, counted from when it sent
// its last successful renewal, minus a safety margin: the server stored
// the renewal no earlier than it was sent, so the key expires no earlier
// than that. Work done under the lease checks Held right before each
// commit, which is the fence: a holder that was paused past its lease
// finds it gone before committing and stops.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/retry"
)

// ErrLost is returned by Held once the lease is no longer this holder's
// (or never was).
var ErrLost = errors.New("lease not held")

// Config names the lease and says how long it lasts.
type Config struct {
	// Bucket is the key-value bucket; its MaxAge is TTL. Every replica
	// must use the same TTL: the bucket has one.
	Bucket string
	// Key is the lease's key in Bucket.
	Key string
	// Identity names this replica in the key's value and in logs; it must
	// be unique among the running replicas (NewIdentity).
	Identity string
	// TTL is how long a lease lasts after its last renewal: the longest a
	// standby waits after the holder died.
	TTL time.Duration
	// Replicas of the bucket on a clustered JetStream.
	Replicas int
	// Metric names this lease's metrics take: Prefix+"_leader" (gauge) and
	// Prefix+"_lease_transitions_total".
	MetricPrefix string
}

// NewIdentity returns the host name with the process id and a random
// suffix: unique per process, readable in logs.
func NewIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Lease is one replica's side of the election.
type Lease struct {
	cfg Config
	kv  jetstream.KeyValue
	log *slog.Logger

	leader      prometheus.Gauge
	transitions prometheus.Counter

	mu       sync.Mutex
	revision uint64    // of our latest write, 0 when not held
	until    time.Time // when our trust in the lease ends
}

// Ensure creates or updates cfg's bucket and returns the lease on it.
// reg receives its metrics (may be nil).
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Lease, error) {
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("lease TTL must be at least 1s, got %s", cfg.TTL)
	}
	if cfg.Identity == "" {
		cfg.Identity = NewIdentity()
	}
	kv, err := eventlog.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "eventpipe: leases of roles that run one active replica",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure key-value bucket %s: %w", cfg.Bucket, err)
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Lease{cfg: cfg, kv: kv, log: log.With("lease", cfg.Bucket+"/"+cfg.Key, "identity", cfg.Identity),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: cfg.MetricPrefix + "_leader",
			Help: "1 while this replica holds the lease and does the work, 0 while it stands by."}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{Name: cfg.MetricPrefix + "_lease_transitions_total",
			Help: "Times this replica took or lost the lease."}),
	}
	if reg != nil {
		reg.MustRegister(l.leader, l.transitions)
	}
	return l, nil
}

// Identity is this replica's name in the lease.
func (l *Lease) Identity() string { return l.cfg.Identity }

// renewEvery is how often the holder renews and a standby tries to take
// the lease.
func (l *Lease) renewEvery() time.Duration { return l.cfg.TTL / 5 }

// margin is how long before the TTL runs out the holder stops trusting
// its lease: room for the clocks of this host and the server's to run at
// slightly different rates, and for the server's expiry to be early.
func (l *Lease) margin() time.Duration { return l.cfg.TTL / 5 }

// Held returns nil while this replica holds the lease, ErrLost otherwise.
// Work done under the lease calls it right before every commit.
func (l *Lease) Held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revision == 0 || !time.Now().Before(l.until) {
		return ErrLost
	}
	return nil
}

// Run campaigns for the lease until ctx ends, and while holding it runs
// work with a context that ends when the lease is lost. After work
// returns it goes back to campaigning; a work error other than a lost
// lease or cancellation ends Run with that error.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context) error) error {
	defer l.release()
	for {
		if !l.acquire(ctx) {
			return nil
		}
		err := l.hold(ctx, work)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// acquire tries to take the lease every renewEvery until it has it (true)
// or ctx ends (false).
func (l *Lease) acquire(ctx context.Context) bool {
	loggedStandby := ""
	for {
		holder, err := l.tryTake(ctx)
		if err == nil {
			l.log.Info("took the lease; active")
			l.leader.Set(1)
			l.transitions.Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if holder != "" && holder != loggedStandby {
			l.log.Info("standing by; another replica holds the lease", "holder", holder)
			loggedStandby = holder
		} else if holder == "" {
			l.log.Warn("cannot take the lease; retrying", "err", err)
		}
		if !retry.Sleep(ctx, l.renewEvery()) {
			return false
		}
	}
}

// errHeld is tryTake's answer when another replica holds the key.
var errHeld = errors.New("held by another replica")

// tryTake takes the key if it is absent (expired, deleted) or holds this
// identity (a restart of this very process's identity). It returns the
// holder's identity when another replica holds it.
func (l *Lease) tryTake(ctx context.Context) (holder string, err error) {
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, l.renewEvery())
	defer cancel()
	rev, err := l.kv.Create(cctx, l.cfg.Key, []byte(l.cfg.Identity))
	if err == nil {
		l.set(rev, sent)
		return "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", err
	}
	e, gerr := l.kv.Get(cctx, l.cfg.Key)
	if gerr != nil {
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return "", err // expired in between: the next try takes it
		}
		return "", gerr
	}
	if string(e.Value()) != l.cfg.Identity {
		return string(e.Value()), errHeld
	}
	rev, err = l.kv.Update(cctx, l.cfg.Key, []byte(l.cfg.Identity), e.Revision())
	if err != nil {
		return "", err
	}
	l.set(rev, sent)
	return "", nil
}

func (l *Lease) set(rev uint64, sent time.Time) {
	l.mu.Lock()
	l.revision, l.until = rev, sent.Add(l.cfg.TTL-l.margin())
	l.mu.Unlock()
}

// hold runs work under the lease and renews it meanwhile. It returns work's
// error, or nil once the lease is lost and work has stopped.
func (l *Lease) hold(ctx context.Context, work func(ctx context.Context) error) error {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- work(wctx) }()
	tick := time.NewTicker(l.renewEvery())
	defer tick.Stop()
	var lost error
	for lost == nil {
		select {
		case err := <-done:
			if errors.Is(err, ErrLost) {
				l.lose(ctx, err)
				return nil
			}
			// Still held: Run releases it on the way out.
			return err
		case <-ctx.Done():
			stop()
			<-done
			return nil
		case <-tick.C:
			lost = l.renew(ctx)
		}
	}
	// Stop work before a standby can take over: the lease is trusted only
	// up to `until`, and work checks Held before each commit.
	stop()
	err := <-done
	l.lose(ctx, lost)
	if err != nil && !errors.Is(err, ErrLost) && ctx.Err() == nil {
		return err
	}
	return nil
}

// renew extends the lease; it returns an error once the lease is lost:
// another replica wrote the key, or renewals failed until the lease's
// trusted time ran out.
func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rev, until := l.revision, l.until
	l.mu.Unlock()
	sent := time.Now()
	if !sent.Before(until) {
		return fmt.Errorf("%w: not renewed within its TTL (%s)", ErrLost, l.cfg.TTL)
	}
	cctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	newRev, err := l.kv.Update(cctx, l.cfg.Key, []byte(l.cfg.Identity), rev)
	if err == nil {
		l.set(newRev, sent)
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	if eventlog.IsWrongLastSequence(err) {
		// An earlier renewal that timed out here may have been stored after
		// all: then the key is still ours, at a newer revision. Its trust
		// stays counted from the renewal before it.
		if e, gerr := l.kv.Get(cctx, l.cfg.Key); gerr == nil && string(e.Value()) == l.cfg.Identity && e.Revision() > rev {
			l.mu.Lock()
			l.revision = e.Revision()
			l.mu.Unlock()
			return nil
		}
		return fmt.Errorf("%w: the key changed under it (another replica took it after it expired)", ErrLost)
	}
	l.log.Warn("cannot renew the lease; retrying until it runs out", "err", err, "trustedFor", time.Until(until).Round(time.Millisecond))
	return nil
}

// lose marks the lease as not held; why is logged.
func (l *Lease) lose(ctx context.Context, why error) {
	l.mu.Lock()
	held := l.revision != 0
	l.revision = 0
	l.mu.Unlock()
	if !held {
		return
	}
	l.leader.Set(0)
	l.transitions.Inc()
	if ctx.Err() == nil {
		l.log.Warn("lost the lease; stopped work, standing by", "reason", why)
	}
}

// release deletes the key if this replica still holds it, so that a
// standby takes over at once after a graceful stop instead of after the
// TTL.
func (l *Lease) release() {
	l.mu.Lock()
	rev := l.revision
	valid := rev != 0 && time.Now().Before(l.until)
	l.revision = 0
	l.mu.Unlock()
	l.leader.Set(0)
	if !valid {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("cannot release the lease; a standby takes it when it expires", "err", err)
		return
	}
	l.transitions.Inc()
	l.log.Info("released the lease")
}
