package exporter

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// metrics are the exporter's Prometheus metrics and the state behind its
// health checks.
type metrics struct {
	seen          *prometheus.CounterVec
	published     prometheus.Counter
	skipped       *prometheus.CounterVec
	publishErrors prometheus.Counter
	relists       *prometheus.CounterVec
	checkpoints   prometheus.Counter

	mu sync.Mutex // guards the times below
	// newestEvent is the newest last-observation time of an exported state.
	newestEvent time.Time
	// lastSeen is when the watch last delivered an event or bookmark.
	lastSeen time.Time
}

func newMetrics(reg prometheus.Registerer, e *Exporter) *metrics {
	m := &metrics{
		seen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventpipe_exporter_events_seen_total",
			Help: "Event states read from the source cluster, by how: added, modified, deleted (watch) or listed.",
		}, []string{"type"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_exporter_events_published_total",
			Help: "Event states acknowledged by JetStream (duplicates JetStream dropped included).",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventpipe_exporter_events_skipped_total",
			Help: "Event states not published: already stored (after a resume) or unpublishable (e.g. too large).",
		}, []string{"reason"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_exporter_publish_errors_total",
			Help: "Failed publish attempts; retryable ones are retried until they succeed.",
		}),
		relists: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventpipe_exporter_relists_total",
			Help: "Full lists of the source's Events, by reason: start (no checkpoint) or expired (410 Gone).",
		}, []string{"reason"}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_exporter_checkpoints_total",
			Help: "Resume points written to JetStream KV.",
		}),
	}
	if reg == nil {
		return m
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(m.seen, m.published, m.skipped, m.publishErrors, m.relists, m.checkpoints,
		gauge("eventpipe_exporter_lag_seconds", "Now minus the last-observation time of the newest exported event.",
			func() float64 { return sinceOrZero(m.times().newestEvent) }),
		gauge("eventpipe_exporter_seconds_since_last_event", "Seconds since the watch last delivered an event or bookmark.",
			func() float64 { return sinceOrZero(m.times().lastSeen) }),
		gauge("eventpipe_exporter_checkpoint_age_seconds", "Age of the oldest state read from the source and not yet covered by the stored resume point; 0 when all are.",
			func() float64 { return e.checkpointAge().Seconds() }),
		gauge("eventpipe_exporter_in_flight", "Event states between the watch and JetStream's acknowledgement.",
			func() float64 { return float64(len(e.sem)) }),
		gauge("eventpipe_exporter_watch_connected", "1 while every watch on the source is open.",
			func() float64 { return boolFloat(e.watchDownSince() == nil) }),
		gauge("eventpipe_exporter_leader", "1 while this replica exports (holds the lease, or runs without leader election).",
			func() float64 { return boolFloat(e.active.Load()) }),
	)
	return m
}

type times struct{ newestEvent, lastSeen time.Time }

func (m *metrics) times() times {
	m.mu.Lock()
	defer m.mu.Unlock()
	return times{m.newestEvent, m.lastSeen}
}

func (m *metrics) sawEvent() {
	m.mu.Lock()
	m.lastSeen = time.Now()
	m.mu.Unlock()
}

func (m *metrics) exported(ev *corev1.Event) {
	t := chstore.LastObserved(ev, time.Time{})
	m.mu.Lock()
	if t.After(m.newestEvent) {
		m.newestEvent = t
	}
	m.mu.Unlock()
}

func sinceOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return time.Since(t).Seconds()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
