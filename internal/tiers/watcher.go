package tiers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// WatcherOptions tune a Watcher. Zero values take the defaults.
type WatcherOptions struct {
	// Interval is how often the file is read (default 10s).
	Interval time.Duration
	// Clock drives the polling and the reload timestamps (default: real).
	Clock clock.WithTicker
	// Log receives reloads and rejected files (default slog.Default()).
	Log *slog.Logger
	// Registerer, when set, gets the watcher's metrics.
	Registerer prometheus.Registerer
}

// Watcher keeps a Resolver in line with a configuration file. It polls:
// each tick it reads the file and compares a hash of its content with the
// last one seen, so it works for files edited in place, replaced by rename,
// and Kubernetes ConfigMap volumes (which swap a symlink), with no inotify.
// A file that fails to read or parse is logged and counted, and the
// configuration in force stays; the same bad content is reported once.
type Watcher struct {
	path string
	res  *Resolver
	o    WatcherOptions
	m    watcherMetrics

	mu sync.Mutex // guards last
	// last is the hash of the content last acted on (put in force or
	// rejected).
	last [sha256.Size]byte
}

type watcherMetrics struct {
	generation   prometheus.Gauge
	success      prometheus.Gauge
	lastReload   prometheus.Gauge
	reloadErrors prometheus.Counter
}

// NewWatcher reads path and puts it in force in res. A file that cannot be
// read or parsed is an error here: the first configuration must be good.
func NewWatcher(path string, res *Resolver, o WatcherOptions) (*Watcher, error) {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Log = o.Log.With("component", "tiers", "file", path)
	w := &Watcher{path: path, res: res, o: o, m: watcherMetrics{
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_config_generation",
			Help: "Tiers configurations put in force since start (1 is the one read at start)."}),
		success: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_config_last_reload_success",
			Help: "1 when the latest read of the tiers file was put in force (or unchanged), 0 when it was rejected and the previous configuration stays."}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_tiers_config_last_reload_timestamp_seconds",
			Help: "When a tiers configuration was last put in force, Unix seconds."}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_tiers_config_reload_errors_total",
			Help: "Reads of the tiers file that were rejected (unreadable or not valid); each distinct bad content counts once."}),
	}}
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.m.generation, w.m.success, w.m.lastReload, w.m.reloadErrors)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tiers config (--tiers.config): %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	w.last = sha256.Sum256(data)
	w.put(c)
	return w, nil
}

func (w *Watcher) put(c *Config) {
	gen := w.res.Set(c)
	w.m.generation.Set(float64(gen))
	w.m.success.Set(1)
	w.m.lastReload.Set(float64(w.o.Clock.Now().Unix()))
	w.o.Log.Info("tiers configuration in force", "generation", gen, "digest", c.Digest(),
		"tiers", len(c.TierNames()), "tenants", len(c.Tenants()), "defaultTier", c.DefaultTier())
}

// Check reads the file once and puts it in force if its content changed.
// It reports whether a new configuration is in force, and why the file was
// rejected (the previous configuration then stays).
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.m.success.Set(0)
		w.m.reloadErrors.Inc()
		w.o.Log.Error("cannot read the tiers file; the previous configuration stays in force", "err", err)
		return false, fmt.Errorf("read tiers config: %w", err)
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], w.last[:]) {
		return false, nil
	}
	w.last = sum
	c, err := Parse(w.path, data)
	if err != nil {
		w.m.success.Set(0)
		w.m.reloadErrors.Inc()
		w.o.Log.Error("tiers file rejected; the previous configuration stays in force", "err", err)
		return false, err
	}
	w.put(c)
	return true, nil
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := w.o.Clock.NewTicker(w.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			_, _ = w.Check() // logged and counted inside
		}
	}
}
