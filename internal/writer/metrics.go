package writer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	written      prometheus.Counter
	batchRows    prometheus.Histogram
	insertTime   prometheus.Histogram
	insertErrors prometheus.Counter
	deadLetters  prometheus.Counter
	watermark    prometheus.Gauge
	pending      prometheus.Gauge
	lagSeconds   prometheus.Gauge
	trimmed      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_writer_events_written_total", Help: "Event states committed to ClickHouse."}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventpipe_writer_batch_rows", Help: "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		insertTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventpipe_writer_insert_duration_seconds", Help: "Time for one successful ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_writer_insert_errors_total", Help: "Failed ClickHouse insert attempts (each is retried)."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_writer_dead_letters_total", Help: "Messages sent to the dead-letter stream because they are not valid event states."}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventpipe_writer_watermark", Help: "Committed watermark: every stream sequence at or below it is queryable."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventpipe_writer_consumer_pending", Help: "Stream messages not yet delivered to the writer (consumer lag, in messages)."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventpipe_writer_lag_seconds", Help: "Age of the newest committed state when its batch committed."}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventpipe_writer_trimmed_total", Help: "Purge operations that removed committed states from the stream."}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.batchRows, m.insertTime, m.insertErrors, m.deadLetters, m.watermark, m.pending, m.lagSeconds, m.trimmed)
	}
	return m
}
