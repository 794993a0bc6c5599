package runtimetune

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestBallastRaisesStartingStack checks the ballast's whole point: after a
// few collections, new goroutines start with the target stack size, where
// without it they start near the 2 KiB minimum.
func TestBallastRaisesStartingStack(t *testing.T) {
	if got := StartingStackSize(); got >= 16<<10 {
		t.Fatalf("starting stack is %d before the ballast; the test cannot tell whether the ballast works", got)
	}
	old := ballastCheck
	ballastCheck = 20 * time.Millisecond
	t.Cleanup(func() { ballastCheck = old })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Idle goroutines with shallow stacks, as a server has, dilute the average.
	stop := make(chan struct{})
	defer close(stop)
	for range 200 {
		go func() { <-stop }()
	}
	go runBallast(ctx, 16<<10, 1024, slog.New(slog.NewTextHandler(io.Discard, nil)))
	deadline := time.Now().Add(10 * time.Second)
	for StartingStackSize() < 16<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("starting stack still %d bytes after 10s, want %d", StartingStackSize(), 16<<10)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	if got := StartingStackSize(); got > 16<<10 {
		t.Errorf("starting stack %d bytes overshoots the target %d", got, 16<<10)
	}
	cancel()
	// The ballast's goroutines unwind and leave.
	before := runtime.NumGoroutine()
	for runtime.NumGoroutine() > 210 {
		if time.Since(deadline) > 10*time.Second {
			t.Fatalf("ballast goroutines still running: %d (had %d)", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApplySetsGCPercentUnlessGOGCSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "150")
	Apply(context.Background(), Options{GCPercent: 300}, nil)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, GC percent became %d, want it left at 100", got)
	}
}

func TestApplySetsGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "") // registers restoring GOGC's original state
	unsetenv(t, "GOGC")
	Apply(context.Background(), Options{GCPercent: 300}, nil)
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("GC percent is %d, want 300", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want int
	}{
		{DefaultOptions(), 0},
		{Options{GCPercent: 100, StackStart: 0, MaxBallast: 1}, 0},
		{Options{GCPercent: 10, StackStart: 16 << 10, MaxBallast: 1}, 1},
		{Options{GCPercent: 100, StackStart: 3000, MaxBallast: 1}, 1},
		{Options{GCPercent: 100, StackStart: 1 << 20, MaxBallast: 0}, 2},
	} {
		if got := len(c.o.Validate()); got != c.want {
			t.Errorf("%+v: %d problems (%v), want %d", c.o, got, c.o.Validate(), c.want)
		}
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
