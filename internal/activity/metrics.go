package activity

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	processed prometheus.Counter
	// auditProcessed counts audit records evaluated.
	auditProcessed prometheus.Counter
	published      prometheus.Counter
	evalErrors     *prometheus.CounterVec
	deadLetters    prometheus.Counter
	missed         prometheus.Counter
	progress       prometheus.Gauge
	indexed        prometheus.Counter
	insertErrs     prometheus.Counter
	watermark      prometheus.Gauge
	trimmed        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		processed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_events_processed_total",
			Help: "Event states the activity processor evaluated."}),
		auditProcessed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_audit_records_processed_total",
			Help: "Audit records the activity processor evaluated (most are dropped by the policies: reads, the control plane's own requests)."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_states_published_total",
			Help: "Activity states published to the ACTIVITIES stream."}),
		evalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_activity_evaluation_errors_total",
			Help: "Policy rules that failed on an event (each is dead-lettered; the next rule is tried)."}, []string{"policy", "rule"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_dead_letters_total",
			Help: "Messages published to the ACTIVITIES_DLQ stream."}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_events_missed_total",
			Help: "Event states trimmed from EVENTS before the processor saw them (run `eventpipe activities reindex`)."}),
		progress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_activity_processed_seq",
			Help: "EVENTS sequence up to which every state has its Activity published."}),
		indexed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_states_indexed_total",
			Help: "Activity states committed to ClickHouse."}),
		insertErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_insert_errors_total",
			Help: "Failed ClickHouse inserts of activity states (each is retried)."}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_activity_watermark",
			Help: "ACTIVITIES sequence up to which every state is queryable."}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_activity_trimmed_total",
			Help: "Purges of indexed states from the ACTIVITIES stream."}),
	}
	if reg != nil {
		reg.MustRegister(m.processed, m.auditProcessed, m.published, m.evalErrors, m.deadLetters, m.missed, m.progress, m.indexed, m.insertErrs, m.watermark, m.trimmed)
	}
	return m
}
