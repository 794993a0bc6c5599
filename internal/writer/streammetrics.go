package writer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// streamCollector reports the state of EVENTS and EVENTS_DLQ as JetStream
// sees it at scrape time, and how old the writer's backlog is. The writer's
// own gauges only move when a batch commits, so during a ClickHouse outage
// they freeze; these are read fresh on every scrape, which is what alerts on
// a filling stream or a stalled writer need. The writer is the one process
// every deployment runs exactly once per stream, so it reports them.
type streamCollector struct {
	w *Writer

	bytes, maxBytes, messages, lastSeq, backlogAge *prometheus.Desc
}

// streamScrapeTimeout bounds the JetStream requests of one scrape, well
// under Prometheus' default scrape timeout of 10s.
const streamScrapeTimeout = 3 * time.Second

func newStreamCollector(w *Writer) *streamCollector {
	stream := []string{"stream"}
	return &streamCollector{w: w,
		bytes: prometheus.NewDesc("eventpipe_stream_bytes",
			"Bytes stored in the stream (EVENTS, EVENTS_DLQ, AUDIT), read from JetStream at scrape time.", stream, nil),
		maxBytes: prometheus.NewDesc("eventpipe_stream_max_bytes",
			"The stream's size bound (--stream.max-bytes for EVENTS); at it, EVENTS refuses publishes.", stream, nil),
		messages: prometheus.NewDesc("eventpipe_stream_messages",
			"Messages stored in the stream, read from JetStream at scrape time.", stream, nil),
		lastSeq: prometheus.NewDesc("eventpipe_stream_last_seq",
			"The stream's last sequence; for EVENTS, compare with eventpipe_writer_watermark.", stream, nil),
		backlogAge: prometheus.NewDesc("eventpipe_writer_backlog_age_seconds",
			"Age of the oldest state in EVENTS above the committed watermark (not yet queryable in ClickHouse); 0 when there is none.", nil, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.maxBytes, c.messages, c.lastSeq, c.backlogAge} {
		ch <- d
	}
}

// Collect reads each stream's info. A stream JetStream cannot describe
// (NATS down, stream missing) is left out rather than reported as zero, so
// that an alert does not mistake an unreachable stream for an empty one.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), streamScrapeTimeout)
	defer cancel()
	for _, name := range []string{eventlog.StreamName, eventlog.DeadLetterStream, audit.StreamName} {
		s, err := c.w.js.Stream(ctx, name)
		if err != nil {
			c.w.log.Debug("cannot read stream info for metrics", "stream", name, "err", err)
			continue
		}
		info := s.CachedInfo()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		gauge(c.bytes, float64(info.State.Bytes))
		gauge(c.maxBytes, float64(info.Config.MaxBytes))
		gauge(c.messages, float64(info.State.Msgs))
		gauge(c.lastSeq, float64(info.State.LastSeq))
		if name == eventlog.StreamName {
			if age, ok := c.backlog(ctx, s, info); ok {
				ch <- prometheus.MustNewConstMetric(c.backlogAge, prometheus.GaugeValue, age.Seconds())
			}
		}
	}
}

// backlog is the age of the first state after the watermark. It is the
// delay a reader sees now, and it keeps growing while nothing commits,
// unlike eventpipe_writer_lag_seconds, which is measured at commits.
func (c *streamCollector) backlog(ctx context.Context, s jetstream.Stream, info *jetstream.StreamInfo) (time.Duration, bool) {
	wm := c.w.wm.Load()
	if info.State.LastSeq <= wm {
		return 0, true
	}
	// The next stored message at or after wm+1 (one may have been deleted).
	msg, err := s.GetMsg(ctx, wm+1, jetstream.WithGetMsgSubject(eventlog.SubjectPrefix+".>"))
	if err != nil {
		c.w.log.Debug("cannot read the oldest uncommitted state for metrics", "seq", wm+1, "err", err)
		return 0, false
	}
	return max(time.Since(msg.Time), 0), true
}
