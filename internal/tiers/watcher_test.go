package tiers_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/eventpipe/eventpipe/internal/tiers"
)

// TestTierChangeWithoutRestart: edits to the file take effect at the next
// poll; a bad file is logged with its line, the old configuration stays, and
// the metrics say so; fixing the file recovers.
func TestTierChangeWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiers.yaml")
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  Project/alpha: Free\n"), 0o644))
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	reg := prometheus.NewPedanticRegistry()
	var logs bytes.Buffer
	res := tiers.NewResolver(nil)
	w, err := tiers.NewWatcher(path, res, tiers.WatcherOptions{Interval: time.Second, Clock: clk, Registerer: reg,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.Equal(t, "Free", res.For(alpha).Tier)
	gen := testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_generation"))
	require.EqualValues(t, 2, gen, "NewResolver's default, then the file")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// A tier change, picked up by the running watcher on its next tick.
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  Project/alpha: Pro\n"), 0o644))
	require.Eventually(t, func() bool {
		clk.Step(time.Second)
		return res.For(alpha).Tier == "Pro"
	}, 10*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 1, testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_last_reload_success")))

	// A bad file: rejected, named by line, the old configuration stays.
	cancel()
	<-done
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  Project/alpha: Pro\n  Project/beta: Gold\n"), 0o644))
	changed, err := w.Check()
	require.False(t, changed)
	require.ErrorContains(t, err, `line 3: tenants["Project/beta"].tier: unknown tier "Gold"`)
	require.Equal(t, "Pro", res.For(alpha).Tier)
	require.EqualValues(t, 0, testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_last_reload_success")))
	require.EqualValues(t, 1, testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_reload_errors_total")))
	require.Contains(t, logs.String(), "previous configuration stays in force")
	require.Contains(t, logs.String(), "line 3")
	changed, err = w.Check()
	require.False(t, changed)
	require.NoError(t, err, "the same bad content is reported once")

	// A missing file (mid-replace) keeps the configuration too.
	require.NoError(t, os.Remove(path))
	_, err = w.Check()
	require.Error(t, err)
	require.Equal(t, "Pro", res.For(alpha).Tier)

	// Fixed: in force at once.
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  Project/alpha: Enterprise\n"), 0o644))
	changed, err = w.Check()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "Enterprise", res.For(alpha).Tier)
	require.EqualValues(t, 1, testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_last_reload_success")))
	require.EqualValues(t, float64(res.Generation()), testutil.ToFloat64(metric(t, reg, "eventpipe_tiers_config_generation")))

	// A bad file at start is an error: nothing to fall back to.
	require.NoError(t, os.WriteFile(path, []byte("nope: 1\n"), 0o644))
	_, err = tiers.NewWatcher(path, tiers.NewResolver(nil), tiers.WatcherOptions{})
	require.ErrorContains(t, err, "line 1: nope: unknown field")
}

// metric finds one collector's current value through the registry.
func metric(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			m := mf.GetMetric()[0]
			switch {
			case m.GetGauge() != nil:
				g.Set(m.GetGauge().GetValue())
			case m.GetCounter() != nil:
				g.Set(m.GetCounter().GetValue())
			}
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}
