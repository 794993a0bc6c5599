package generator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Sink receives every event state the simulated cluster produces, in order.
type Sink interface {
	Write(ctx context.Context, op eventlog.Op, sc scope.Scope, ev *corev1.Event) error
}

// Config describes the simulated clusters.
type Config struct {
	// Tenants are the scopes that own a simulated cluster each, e.g.
	// {Project, alpha} and {Project, beta}. The Platform scope gets events
	// only when it is listed.
	Tenants []scope.Scope
	// Namespaces is the number of namespaces per tenant (default 3).
	Namespaces int
	// Rate is the number of event states per second Run produces over all
	// tenants (default 20).
	Rate float64
	// Seed makes the output deterministic for a given clock.
	Seed int64
	// Now is the clock that timestamps come from (default time.Now).
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultNamespaces = 3
	DefaultRate       = 20.0
)

// Memory bounds: the simulation forgets the oldest of its events and
// repeating events beyond these, so that it can run for days.
const (
	// maxLive is how many stored events the simulation remembers, to update
	// or delete them later.
	maxLive = 4096
	// maxRepeaters is how many of them may still repeat.
	maxRepeaters = 512
	// maxChains is how many stories may be under way before no new one
	// starts.
	maxChains = 64
	// minLiveToExpire keeps events from expiring while the simulation is
	// young: real events live an hour, not seconds.
	minLiveToExpire = 1024
)

// The share of states that repeat an event and that delete one; of the
// rest, the share that continue a story under way rather than start one.
const (
	repeatShare = 0.28
	deleteShare = 0.04
	chainShare  = 0.65
)

// Generator simulates the clusters of Config.Tenants. It is safe for
// concurrent use, though Backfill is meant to run before Run, not during it.
type Generator struct {
	mu   sync.Mutex
	now  func() time.Time
	rate float64
	rng  *rand.Rand

	tenants     []*tenant
	tenantTotal float64

	chains    []chain
	live      ring
	repeaters []*liveEvent

	// lastNano is the time of the last state; states get distinct, increasing
	// times so that event names (which embed them) never collide.
	lastNano int64
	// t is the time of the state being made.
	t time.Time
}

// New validates cfg and builds the simulated clusters.
func New(cfg Config) (*Generator, error) {
	var errs []error
	if len(cfg.Tenants) == 0 {
		errs = append(errs, errors.New("tenants: none given; want at least one scope"))
	}
	seen := map[scope.Scope]int{}
	for i, sc := range cfg.Tenants {
		if err := sc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenants[%d]: %w", i, err))
			continue
		}
		if j, dup := seen[sc]; dup {
			errs = append(errs, fmt.Errorf("tenants[%d]: %s is already tenants[%d]", i, sc, j))
			continue
		}
		seen[sc] = i
	}
	switch {
	case cfg.Namespaces < 0:
		errs = append(errs, fmt.Errorf("namespaces: %d is negative", cfg.Namespaces))
	case cfg.Namespaces > maxNamespaces:
		errs = append(errs, fmt.Errorf("namespaces: %d is more than %d", cfg.Namespaces, maxNamespaces))
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate: %v is not a positive finite number of events per second", cfg.Rate))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Namespaces == 0 {
		cfg.Namespaces = DefaultNamespaces
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Generator{now: cfg.Now, rate: cfg.Rate}
	used := map[string]bool{}
	for _, sc := range cfg.Tenants {
		// Each cluster is built from its own stream, so that a tenant looks
		// the same whatever other tenants are configured with it.
		h := fnv.New64a()
		h.Write([]byte(sc.String()))
		g.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), h.Sum64()))
		tn := g.newTenant(sc, cfg.Namespaces, used)
		g.tenants = append(g.tenants, tn)
		g.tenantTotal += tn.weight
	}
	g.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	return g, nil
}

// Next returns the next state of the simulated clusters: the operation, the
// tenant and the event, timestamped by the configured clock. It does no I/O
// and never sleeps. The caller owns the returned event.
func (g *Generator) Next() (eventlog.Op, scope.Scope, *corev1.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.next(g.now())
	return st.op, st.sc, st.ev.DeepCopy()
}

// Run writes states to sink at the configured rate until ctx is done, then
// returns nil. It returns the sink's error, wrapped, if a write fails.
func (g *Generator) Run(ctx context.Context, sink Sink) error {
	start := time.Now()
	// A slow sink is not caught up with by more than a second's worth of
	// states at once.
	maxBehind := max(int64(g.rate), 1)
	var sent int64
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		due := int64(time.Since(start).Seconds()*g.rate) + 1
		if due-sent > maxBehind {
			sent = due - maxBehind
		}
		for ; sent < due; sent++ {
			if ctx.Err() != nil {
				return nil
			}
			op, sc, ev := g.Next()
			if err := sink.Write(ctx, op, sc, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("write %s of event %s/%s for %s: %w", op, ev.Namespace, ev.Name, sc, err)
			}
		}
		next := start.Add(time.Duration(float64(sent) / g.rate * float64(time.Second)))
		timer.Reset(time.Until(next))
	}
}

// Backfill writes n states to sink whose times are spread over [from, to) in
// increasing order, as history for a demo. It is meant for a new Generator,
// before Run.
//
// Legacy events keep second-precision timestamps, so the states start at the
// first whole second at or after from (when that is before to), keeping every
// timestamp inside the window. A delete carries the event's final state
// unchanged, so its timestamps are those of its last occurrence.
func (g *Generator) Backfill(ctx context.Context, sink Sink, from, to time.Time, n int) error {
	if n < 0 {
		return fmt.Errorf("backfill: n is %d, want 0 or more", n)
	}
	if !to.After(from) {
		return fmt.Errorf("backfill: window [%s, %s) is empty", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	if n == 0 {
		return nil
	}
	lo := from
	if c := from.Truncate(time.Second); c.Before(from) {
		if c = c.Add(time.Second); c.Before(to) {
			lo = c
		}
	}
	span := to.Sub(lo)
	if span/time.Duration(n) < time.Microsecond {
		return fmt.Errorf("backfill: %d states do not fit in %s at one per microsecond", n, span)
	}
	slot := float64(span) / float64(n)

	g.mu.Lock()
	saved := g.lastNano
	g.lastNano = lo.UnixNano() - 1
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.lastNano = max(saved, g.lastNano)
		g.mu.Unlock()
	}()

	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
		g.mu.Lock()
		// One state per slot, somewhere in it: increasing, not metronomic.
		at := lo.Add(time.Duration(slot*float64(i) + slot*0.99*g.rng.Float64()))
		if !at.Before(to) {
			at = to.Add(-time.Nanosecond)
		}
		st := g.next(at)
		ev := st.ev.DeepCopy()
		g.mu.Unlock()
		if err := sink.Write(ctx, st.op, st.sc, ev); err != nil {
			return fmt.Errorf("write %s of backfilled event %s/%s for %s: %w", st.op, ev.Namespace, ev.Name, st.sc, err)
		}
	}
	return nil
}

// next makes the state at time now. g.mu is held.
func (g *Generator) next(now time.Time) state {
	g.t = g.stamp(now)
	for {
		if st, ok := g.step(); ok {
			return st
		}
	}
}

// stamp returns now, or just after the previous state if the clock has not
// moved on: event names embed the time in nanoseconds, and a fixed or coarse
// clock must not make two events share a name.
func (g *Generator) stamp(now time.Time) time.Time {
	n := now.UnixNano()
	if n <= g.lastNano {
		n = g.lastNano + 1
	}
	g.lastNano = n
	return time.Unix(0, n).UTC()
}

// step tries to make one state; ok is false when the attempt produced
// nothing and another is needed.
func (g *Generator) step() (state, bool) {
	switch r := g.rng.Float64(); {
	case r < repeatShare:
		if st, ok := g.repeat(); ok {
			return st, true
		}
	case r < repeatShare+deleteShare && g.live.n >= minLiveToExpire:
		if st, ok := g.expire(); ok {
			return st, true
		}
	}
	if n := len(g.chains); n > 0 && (n >= maxChains || g.rng.Float64() < chainShare) {
		return g.advance()
	}
	return g.start()
}

// advance runs the next step of a random story under way.
func (g *Generator) advance() (state, bool) {
	i := g.rng.IntN(len(g.chains))
	c := g.chains[i]
	s := c[0]
	if len(c) == 1 {
		last := len(g.chains) - 1
		g.chains[i] = g.chains[last]
		g.chains[last] = nil
		g.chains = g.chains[:last]
	} else {
		g.chains[i] = c[1:]
	}
	return s()
}

// start begins a new story in a tenant chosen by weight.
func (g *Generator) start() (state, bool) {
	tn := g.tenants[len(g.tenants)-1]
	x := g.rng.Float64() * g.tenantTotal
	for _, t := range g.tenants {
		if x < t.weight {
			tn = t
			break
		}
		x -= t.weight
	}
	act := activities[len(activities)-1]
	y := g.rng.Float64() * activityTotal
	for _, a := range activities {
		if y < a.weight {
			act = a
			break
		}
		y -= a.weight
	}
	steps := act.start(g, tn)
	if len(steps) == 0 {
		return state{}, false
	}
	if len(steps) > 1 {
		g.chains = append(g.chains, chain(steps[1:]))
	}
	return steps[0]()
}
