// Package runtimetune fits the Go runtime to eventpipe's servers: many small
// requests, each served through k8s.io/apiserver's deep handler chain, and a
// small live heap.
//
// Three settings; what the first and the last are worth on the create path,
// and what the GC target costs in memory, is in bench/README.md:
//
//   - The GC target. With Go's default (GOGC=100) the collector's background
//     marking and assists are a noticeable part of the CPU of a create; at
//     300 they are a small one. The price is memory: the heap grows to four
//     times the live data between collections, and an API server with many
//     watches holds the shared watch tail's ring live, so its resident set
//     grows well beyond its live heap. GOGC in the environment wins.
//
//   - A soft memory limit (debug.SetMemoryLimit), which bounds that: near the
//     limit the collector runs as often as it must, whatever the GC target.
//     By default it is taken from the container's cgroup limit, less a
//     margin for what Go does not count; GOMEMLIMIT in the environment wins.
//
//   - Goroutine starting stacks. Go starts each new goroutine with a stack
//     the size of the average stack its last collection scanned (at least
//     2 KiB). k8s.io/apiserver serves every request in three new goroutines
//     (HTTP/2's handler, the timeout filter's, the finisher's), each of which
//     runs 40 to 80 frames deep and so is copied as it grows, 2 → 4 → 8 → 16
//     → 32 KiB, and copying those stacks showed in a create's CPU profile. The
//     server's many idle goroutines (connections, timers, informers) keep the
//     average near the minimum. A stack ballast, goroutines parked with deep
//     stacks, lifts the average so that new goroutines start at the target
//     size instead. The stacks of goroutines that use little of theirs are
//     halved at every collection as usual, so idle goroutines do not keep
//     the larger stacks.
package runtimetune

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/spf13/pflag"
)

// Options are the runtime settings.
type Options struct {
	// GCPercent is the GC target used when the GOGC environment variable is
	// not set; 100 is Go's default.
	GCPercent int
	// StackStart is the starting stack size to aim for, in bytes, a power of
	// two; 0 turns the ballast off.
	StackStart int
	// MaxBallast bounds the number of ballast goroutines (each holds a
	// StackStart-sized stack).
	MaxBallast int
	// MemoryLimit is Go's soft memory limit: MemoryLimitAuto (from the
	// container's cgroup), "0" for none, or a size such as "512Mi". The
	// GOMEMLIMIT environment variable wins.
	MemoryLimit string
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{GCPercent: 300, StackStart: 32 << 10, MaxBallast: 1024, MemoryLimit: MemoryLimitAuto}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.GCPercent, "runtime.gc-percent", o.GCPercent,
		"Go GC target (as GOGC) when the GOGC environment variable is not set; higher trades memory for less CPU spent collecting")
	fs.IntVar(&o.StackStart, "runtime.stack-start", o.StackStart,
		"starting stack size in bytes (a power of two from 4096 to 65536) to keep new goroutines at with a stack ballast, so request goroutines are not copied as they grow; 0 turns it off")
	fs.IntVar(&o.MaxBallast, "runtime.stack-ballast-max", o.MaxBallast, "most goroutines the stack ballast parks")
	fs.StringVar(&o.MemoryLimit, "runtime.memory-limit", o.MemoryLimit,
		"Go's soft memory limit, which makes the garbage collector work harder as the process nears it: auto (the container's cgroup memory limit less 10% or 64Mi, whichever is more; none outside a limited cgroup), 0 for none, or a size such as 512Mi; the GOMEMLIMIT environment variable wins")
}

// Validate returns every problem with o.
func (o *Options) Validate() []error {
	var errs []error
	if o.GCPercent < 25 {
		errs = append(errs, fmt.Errorf("--runtime.gc-percent must be at least 25, got %d", o.GCPercent))
	}
	if s := o.StackStart; s != 0 && (s < 4096 || s > 65536 || s&(s-1) != 0) {
		errs = append(errs, fmt.Errorf("--runtime.stack-start must be 0 or a power of two from 4096 to 65536, got %d", s))
	}
	if o.MaxBallast < 1 {
		errs = append(errs, fmt.Errorf("--runtime.stack-ballast-max must be at least 1, got %d", o.MaxBallast))
	}
	if _, _, err := memoryLimit(o.MemoryLimit); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Apply sets the GC target and starts the stack ballast, which stops when
// ctx is done. Call it once per process.
func Apply(ctx context.Context, o Options, log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(o.GCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if limit, from, err := memoryLimit(o.MemoryLimit); err == nil && limit > 0 {
			debug.SetMemoryLimit(limit)
			log.Info("Go memory limit set", "bytes", limit, "from", from)
		}
	}
	if o.StackStart > 0 {
		go runBallast(ctx, o.StackStart, o.MaxBallast, log)
	}
}

// startingStack is the runtime's current starting stack size.
const startingStack = "/gc/stack/starting-size:bytes"

// StartingStackSize returns the size in bytes new goroutines start with.
func StartingStackSize() int {
	s := []metrics.Sample{{Name: startingStack}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int(s[0].Value.Uint64())
}

// ballastCheck is how often the ballast compares the starting size with
// its target; the runtime recomputes the size at each collection.
var ballastCheck = 2 * time.Second

// runBallast adds parked deep-stacked goroutines until the runtime's
// starting stack size reaches target or limit goroutines are parked. Each
// uses about three quarters of target, so the average can approach but not
// pass target, and the runtime rounds it up to target (a power of two).
func runBallast(ctx context.Context, target, limit int, log *slog.Logger) {
	release := make(chan struct{})
	defer close(release)
	depth := target * 3 / 4 / ballastFrame
	parked := 0
	t := time.NewTicker(ballastCheck)
	defer t.Stop()
	for {
		if got := StartingStackSize(); got < target && parked < limit {
			n := min(limit-parked, max(64, parked/2))
			for range n {
				go park(depth, release)
			}
			parked += n
			log.Debug("stack ballast", "parked", parked, "startingStack", got, "target", target)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ballastFrame is the stack one level of park uses, roughly: its local
// array plus the call's overhead.
const ballastFrame = 512

// park recurses depth levels deep, each holding a frame of about
// ballastFrame bytes, and waits there for release.
//
//go:noinline
func park(depth int, release <-chan struct{}) byte {
	var pad [ballastFrame - 64]byte
	pad[depth%len(pad)] = byte(depth)
	if depth <= 0 {
		<-release
		return pad[0]
	}
	return park(depth-1, release) ^ pad[(depth*31)%len(pad)]
}
