package load

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a create load did.
type Result struct {
	OK, Errs atomic.Int64
	mu       sync.Mutex
	// Lat holds the latency of every create, failed ones too.
	Lat      Latencies
	FirstErr error
	Elapsed  time.Duration
}

// Run runs one worker per creator, each creating events of f one after the
// other as fast as the server answers, until deadline (when not zero) or
// until total events have been attempted (when total > 0). It returns once
// every worker has finished its last request.
func Run(ctx context.Context, creators []Creator, f *EventFactory, deadline time.Time, total int64) *Result {
	r := &Result{}
	var claimed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, cs := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat Latencies
			defer func() {
				r.mu.Lock()
				r.Lat = append(r.Lat, lat...)
				r.mu.Unlock()
			}()
			for ctx.Err() == nil {
				if total > 0 && claimed.Add(1) > total {
					return
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				ev, _ := f.Next()
				Stamp(ev)
				t := time.Now()
				err := cs.Create(ctx, ev)
				lat = append(lat, time.Since(t))
				if err != nil {
					if r.Errs.Add(1) == 1 {
						r.mu.Lock()
						r.FirstErr = err
						r.mu.Unlock()
					}
					continue
				}
				r.OK.Add(1)
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	return r
}

// Latencies collects durations.
type Latencies []time.Duration

// Pct returns the q-quantile (0 < q <= 1) by the nearest-rank method.
func (l Latencies) Pct(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Max returns the longest duration, 0 for none.
func (l Latencies) Max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return slices.Max(l)
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
