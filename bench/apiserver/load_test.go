package apiserverbench

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var contentTypeFlag = flag.String("apibench.content-type", "protobuf",
	"what the load client, the preload and the watchers send and accept: protobuf (as kubelet and controllers) or json")

func contentType(b *testing.B) string {
	switch *contentTypeFlag {
	case "protobuf":
		return contentProtobuf
	case "json":
		return contentJSON
	}
	b.Fatalf("-apibench.content-type=%q: want protobuf or json", *contentTypeFlag)
	return ""
}

// createRun is what a create load did.
type createRun struct {
	ok, errs atomic.Int64
	mu       sync.Mutex
	lat      latencies
	firstErr error
	elapsed  time.Duration
}

// createLoad runs one worker per client, each creating events one after the
// other as fast as the server answers, until deadline (when not zero) or
// until total events have been attempted (when total > 0). It returns once
// every worker has finished its last request.
func createLoad(ctx context.Context, clients []creator, f *eventFactory, deadline time.Time, total int64) *createRun {
	r := &createRun{}
	var claimed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, cs := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat latencies
			defer func() {
				r.mu.Lock()
				r.lat = append(r.lat, lat...)
				r.mu.Unlock()
			}()
			for ctx.Err() == nil {
				if total > 0 && claimed.Add(1) > total {
					return
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				ev, _ := f.next()
				stamp(ev)
				t := time.Now()
				err := cs.create(ctx, ev)
				lat = append(lat, time.Since(t))
				if err != nil {
					if r.errs.Add(1) == 1 {
						r.mu.Lock()
						r.firstErr = err
						r.mu.Unlock()
					}
					continue
				}
				r.ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(b *testing.B, name, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n <= 0 {
			b.Fatalf("-%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}
