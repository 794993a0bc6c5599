// Package ratelimit enforces the tiers' per-tenant, per-minute write rates,
// shared by every API server replica through a JetStream key-value bucket.
//
// # How the count is shared
//
// Windows are calendar minutes (UTC). For each tenant and minute the bucket
// holds one key whose value is the number of write tokens handed out so far
// in that minute, across all replicas. A replica does not increment it once
// per write: it takes a lease, a block of consecutive tokens, with one
// compare-and-set (Create for the minute's first lease, Update at the read
// revision after that), and then spends the tokens locally with no network
// round trip. Each token has an exact ordinal within the minute (the lease
// [c+1, c+k] after reading count c), so:
//
//   - the hard limit is never exceeded: a lease never reaches past it, and
//     a CAS that lost a race is retried on the new count;
//   - a write gets a warning exactly when its ordinal is above the soft
//     limit.
//
// Lease size is min(MaxLease, room/(2·Replicas)), at least the tokens asked
// for, where room is what is left under the hard limit: far from the limit
// one round trip serves up to MaxLease writes; near it leases shrink to one
// token, so the last writes of the minute are counted one by one. The cost
// of sharing is stranded tokens: tokens leased by one replica and not spent
// when the limit is reached. A tenant can therefore be refused on one
// replica while another still holds up to ~room/(2·Replicas) tokens from its
// last lease (those writes are accepted on the replica that holds them); for
// Free (hard 500) with 2 replicas that is at most 125 tokens early in the
// minute, shrinking to 0–1 at the limit. With one replica nothing is
// stranded and the counts are exact. Warnings: tokens stranded below the
// soft limit make later writes get their warning early, never late.
//
// Windows are fixed: a tenant can write up to the hard limit in the last
// seconds of one minute and again in the first seconds of the next.
//
// When the bucket cannot be reached (NATS down, timeout), each replica falls
// back to counting alone against the limits divided by Replicas, and says so
// in a metric: the sum over replicas stays within the limits if traffic is
// spread evenly.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tiers"
)

// Limits gives a scope's effective limits; *tiers.Resolver is one.
type Limits interface {
	For(sc scope.Scope) tiers.Limits
}

// Verdict is what to do with a write.
type Verdict int

// Verdicts.
const (
	// Allow accepts the write.
	Allow Verdict = iota
	// AllowWithWarning accepts it and sends Decision.Warning as a Warning
	// header.
	AllowWithWarning
	// Deny refuses it: 429 with Retry-After (Decision.Err).
	Deny
)

func (v Verdict) String() string {
	return [...]string{"allow", "warn", "deny"}[v]
}

// Decision is the limiter's answer for one write (or one batch).
type Decision struct {
	Verdict Verdict
	// Warning is the Warning header text when Verdict is AllowWithWarning.
	Warning string
	// RetryAfter is the time until the minute ends when Verdict is Deny.
	RetryAfter time.Duration
	// Count is the write's ordinal within the minute (the last one, for a
	// batch); 0 when the tenant is unlimited or the write was refused.
	Count  int64
	Limits tiers.Limits
}

// Err is the 429 to return for a Deny, else nil.
func (d Decision) Err() error {
	if d.Verdict != Deny {
		return nil
	}
	return tiers.TooManyRequests(d.Limits, d.RetryAfter)
}

// Config tunes a Limiter.
type Config struct {
	// Bucket is the key-value bucket for the counters (created if missing).
	Bucket string
	// BucketReplicas is the bucket's replication in a NATS cluster.
	BucketReplicas int
	// Replicas is the number of API server replicas sharing the limits:
	// leases are sized so that each can take its share, and it divides the
	// limits when the bucket is unreachable.
	Replicas int
	// MaxLease caps the tokens one round trip takes.
	MaxLease int64
	// KVTimeout bounds one bucket operation; past it the fallback decides.
	KVTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Bucket: "EVENTPIPE_RATE", BucketReplicas: 1, Replicas: 1, MaxLease: 64, KVTimeout: 500 * time.Millisecond}
}

// Limiter decides writes against per-minute limits. It is safe for
// concurrent use.
type Limiter struct {
	cfg    Config
	kv     jetstream.KeyValue // nil: per-replica counting only
	limits Limits
	clk    clock.PassiveClock
	log    *slog.Logger
	m      metrics

	// warned is the minute of the last fallback warning in the log.
	warned atomic.Int64

	mu      sync.Mutex // guards tenants and swept
	tenants map[scope.Scope]*tenant
	swept   int64 // the minute of the last sweep of idle tenants
}

// tenant is one tenant's state on this replica for the current minute.
type tenant struct {
	mu     sync.Mutex // guards the fields below; held across a bucket round trip
	minute int64
	// next and end bound the unspent lease: ordinals next … end-1.
	next, end int64
	// known is the latest count read from or written to the bucket.
	known int64
	// local counts this replica's accepted tokens, for the fallback.
	local int64
}

type metrics struct {
	decisions  *prometheus.CounterVec
	kvOps      prometheus.Counter
	kvConflict prometheus.Counter
	fallbacks  prometheus.Counter
}

// New returns a limiter sharing its counts through js (nil: this replica
// counts alone, see Config.Replicas). It creates the bucket if needed.
func New(ctx context.Context, js jetstream.JetStream, limits Limits, cfg Config, clk clock.PassiveClock, reg prometheus.Registerer, log *slog.Logger) (*Limiter, error) {
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.MaxLease < 1 {
		cfg.MaxLease = 1
	}
	if cfg.KVTimeout <= 0 {
		cfg.KVTimeout = DefaultConfig().KVTimeout
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Limiter{cfg: cfg, limits: limits, clk: clk, log: log.With("component", "ratelimit"), tenants: map[scope.Scope]*tenant{},
		m: metrics{
			decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_tiers_rate_decisions_total",
				Help: "Rate-limit decisions by tier and verdict (allow, warn: above the soft limit, deny: above the hard limit, 429)."}, []string{"tier", "verdict"}),
			kvOps: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_rate_kv_leases_total",
				Help: "Leases taken from the shared rate-limit bucket (one round trip each, plus conflicts)."}),
			kvConflict: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_rate_kv_conflicts_total",
				Help: "Lease attempts that lost a compare-and-set race with another replica and were retried."}),
			fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_rate_fallback_decisions_total",
				Help: "Decisions made per replica (limits divided by the replica count) because the shared bucket was unreachable."}),
		}}
	if reg != nil {
		reg.MustRegister(l.m.decisions, l.m.kvOps, l.m.kvConflict, l.m.fallbacks)
	}
	if js != nil {
		kv, err := eventlog.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: "eventpipe per-tenant per-minute write counters",
			History:     1,
			// A minute's key is useless after the minute; keep it a little
			// longer than that so clock skew between replicas cannot reset
			// a live count.
			TTL:      3 * time.Minute,
			Storage:  jetstream.MemoryStorage, // counters are worth one minute; no disk writes
			Replicas: max(cfg.BucketReplicas, 1),
		})
		if err != nil {
			return nil, fmt.Errorf("ensure rate-limit bucket %s: %w", cfg.Bucket, err)
		}
		l.kv = kv
	}
	return l, nil
}

// Allow decides one write by sc.
func (l *Limiter) Allow(ctx context.Context, sc scope.Scope) Decision { return l.AllowN(ctx, sc, 1) }

// AllowN decides a batch of n writes by sc as a whole: all accepted or all
// refused (the webhook's batches).
func (l *Limiter) AllowN(ctx context.Context, sc scope.Scope, n int64) Decision {
	lim := l.limits.For(sc)
	d := l.decide(ctx, sc, lim, max(n, 1))
	l.m.decisions.WithLabelValues(lim.Tier, d.Verdict.String()).Inc()
	return d
}

func (l *Limiter) decide(ctx context.Context, sc scope.Scope, lim tiers.Limits, n int64) Decision {
	if lim.RateHard == tiers.Unlimited && lim.RateSoft == tiers.Unlimited {
		return Decision{Verdict: Allow, Limits: lim}
	}
	now := l.clk.Now()
	minute := now.Unix() / 60
	retry := time.Unix((minute+1)*60, 0).Sub(now)
	t := l.tenant(sc, minute)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.minute != minute {
		t.minute, t.next, t.end, t.known, t.local = minute, 0, 0, 0, 0
	}

	last, ok, err := l.take(ctx, sc, t, lim, n)
	if err != nil {
		// The bucket is unreachable: count alone against this replica's share.
		l.m.fallbacks.Inc()
		if l.warned.Swap(minute) != minute { // once a minute, not once a write
			l.log.Warn("rate-limit bucket unreachable; deciding per replica", "scope", sc.String(), "replicas", l.cfg.Replicas, "err", err)
		}
		last, ok = t.local+n, true
		if lim.RateHard != tiers.Unlimited && last > share(lim.RateHard, l.cfg.Replicas) {
			ok = false
		} else {
			t.local = last
		}
		if ok && lim.RateSoft != tiers.Unlimited && last > share(lim.RateSoft, l.cfg.Replicas) {
			return Decision{Verdict: AllowWithWarning, Warning: tiers.RateWarning(lim, last*int64(l.cfg.Replicas)), Count: last, Limits: lim}
		}
	}
	switch {
	case !ok:
		return Decision{Verdict: Deny, RetryAfter: retry, Limits: lim}
	case lim.RateSoft != tiers.Unlimited && last > lim.RateSoft:
		return Decision{Verdict: AllowWithWarning, Warning: tiers.RateWarning(lim, last), Count: last, Limits: lim}
	}
	return Decision{Verdict: Allow, Count: last, Limits: lim}
}

// share is a replica's part of limit when each counts alone (rounded up,
// so a limit below the replica count still lets one write through).
func share(limit int64, replicas int) int64 {
	return (limit + int64(replicas) - 1) / int64(replicas)
}

// take spends n tokens of t's lease, leasing more if needed, and returns the
// ordinal of the last one. ok is false when the hard limit leaves no room;
// err when the bucket could not be reached (nothing was taken). t.mu is held.
func (l *Limiter) take(ctx context.Context, sc scope.Scope, t *tenant, lim tiers.Limits, n int64) (last int64, ok bool, err error) {
	hard := lim.RateHard
	have := t.end - t.next
	if have >= n {
		last = t.next + n - 1
		if hard != tiers.Unlimited && last > hard {
			return 0, false, nil // the limit went down mid-minute (tier change)
		}
		t.next += n
		t.local += n
		return last, true, nil
	}
	if hard != tiers.Unlimited && t.known >= hard {
		// Counts only grow within a minute: no room, no round trip. Known
		// against the limit in force now, so a raised limit applies at once.
		return 0, false, nil
	}
	if hard == tiers.Unlimited && t.known >= lim.RateSoft {
		// Past the soft limit with no hard one: every write warns, no
		// need to count further.
		t.local += n
		return t.known + n, true, nil
	}
	if l.kv == nil {
		return 0, false, errors.New("no shared bucket configured")
	}
	need := n - have
	key := Key(sc, t.minute)
	kctx, cancel := context.WithTimeout(ctx, l.cfg.KVTimeout)
	defer cancel()
	// Retry compare-and-swap conflicts for as long as the KV timeout
	// allows: giving up on a conflict would fall back to per-replica
	// counting, which can pass the hard limit while the bucket is fine.
	for attempt := 0; kctx.Err() == nil; attempt++ {
		if attempt > 0 {
			// A little jitter so that replicas stop colliding.
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 8)))))
		}
		var cur int64
		var rev uint64
		e, err := l.kv.Get(kctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, false, fmt.Errorf("read %s: %w", key, err)
		default:
			cur, err = strconv.ParseInt(string(e.Value()), 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("read %s: value %q is not a count", key, e.Value())
			}
			rev = e.Revision()
		}
		t.known = cur
		lease := l.leaseSize(lim, cur, need)
		if hard != tiers.Unlimited {
			room := hard - cur
			if room < need {
				return 0, false, nil
			}
			lease = min(lease, room)
		}
		val := []byte(strconv.FormatInt(cur+lease, 10))
		l.m.kvOps.Inc()
		if rev == 0 {
			_, err = l.kv.Create(kctx, key, val)
		} else {
			_, err = l.kv.Update(kctx, key, val, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			l.m.kvConflict.Inc()
			continue // another replica moved the count: read it again
		}
		if err != nil {
			return 0, false, fmt.Errorf("write %s: %w", key, err)
		}
		// The leftover of the old lease and the first tokens of the new
		// one serve this request; the rest of the new one is kept.
		t.known = cur + lease
		last = cur + need
		t.next, t.end = last+1, cur+lease+1
		t.local += n
		return last, true, nil
	}
	return 0, false, fmt.Errorf("update %s: concurrent updates for longer than the KV timeout: %w", key, kctx.Err())
}

// leaseSize is how many tokens to take when the bucket shows cur: a share
// of the room left that leaves room for the other replicas, capped by
// MaxLease, never less than the tokens needed now.
func (l *Limiter) leaseSize(lim tiers.Limits, cur, need int64) int64 {
	size := l.cfg.MaxLease
	if lim.RateHard != tiers.Unlimited {
		size = min(size, (lim.RateHard-cur)/int64(2*l.cfg.Replicas))
	}
	return max(size, need, 1)
}

// tenant returns sc's state, creating it; once a minute it forgets tenants
// idle for longer, so memory follows the active tenants.
func (l *Limiter) tenant(sc scope.Scope, minute int64) *tenant {
	l.mu.Lock()
	defer l.mu.Unlock()
	if minute != l.swept {
		for k, t := range l.tenants {
			if t.mu.TryLock() {
				if t.minute < minute-1 {
					delete(l.tenants, k)
				}
				t.mu.Unlock()
			}
		}
		l.swept = minute
	}
	t, ok := l.tenants[sc]
	if !ok {
		t = &tenant{minute: minute}
		l.tenants[sc] = t
	}
	return t
}

// Key is the bucket key of sc's counter for a minute (Unix seconds / 60).
// Key names allow only [-_=./A-Za-z0-9]; other bytes of the name are escaped
// as =XX, and '.' too, so that the tokens cannot collide.
func Key(sc scope.Scope, minute int64) string {
	var b strings.Builder
	b.WriteString(sc.Type)
	b.WriteByte('.')
	for i := 0; i < len(sc.Name); i++ {
		c := sc.Name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	if sc.Name == "" {
		b.WriteByte('_')
	}
	b.WriteByte('.')
	b.WriteString(strconv.FormatInt(minute, 10))
	return b.String()
}
