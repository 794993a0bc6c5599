package activity

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/retry"
)

// Processor turns event states into Activity states: a durable consumer on
// EVENTS that evaluates the policies and publishes one state per event state
// on the event's own ACTIVITIES subject. Create it with NewProcessor and
// call Run once.
//
// Exactly one Activity per event holds by construction: every state of an
// event goes to the same subject, and the Activity is that subject's latest
// state. Restarts neither lose nor double: the processor resumes after the
// larger of its ack floor and the progress mark it writes once a batch's
// states are stored, and republishing a state after a crash reuses its
// message id (ev-<EVENTS sequence>), which JetStream deduplicates; past the
// duplicate window it would only repeat the same state on the same subject.
type Processor struct {
	cfg    Config
	js     jetstream.JetStream
	engine *Engine
	log    *slog.Logger
	m      *metrics
	// crashAfterPublish, when set (tests), runs after a batch is published
	// and before progress is recorded; returning true makes the processor
	// stop there as a crash would: nothing recorded, nothing acknowledged.
	crashAfterPublish func() bool
}

// NewProcessor returns a processor evaluating engine's policies. The
// metrics (shared with the Indexer) are registered on reg.
func NewProcessor(js jetstream.JetStream, engine *Engine, cfg Config, m *Metrics, log *slog.Logger) *Processor {
	if log == nil {
		log = slog.Default()
	}
	return &Processor{cfg: cfg, js: js, engine: engine, log: log.With("component", "activity-processor"), m: m.m}
}

// Metrics are the activity pipeline's metrics.
type Metrics struct{ m *metrics }

// NewMetrics registers the pipeline's metrics on reg (may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics { return &Metrics{m: newMetrics(reg)} }

// Run consumes until ctx ends; it returns nil on cancellation.
func (p *Processor) Run(ctx context.Context) error {
	s, err := p.cfg.durable(p.js, eventlog.StreamName, p.cfg.Consumer, eventlog.SubjectPrefix+".>",
		"eventpipe activity processor: EVENTS -> ACTIVITIES").Resume(ctx, ProgressKey)
	if err != nil {
		return err
	}
	p.log.Info("activity processor started", "consumer", p.cfg.Consumer, "from", s.Done+1)
	return s.Consume(ctx, p.log, func(ctx context.Context, b eventlog.Batch) bool {
		return len(b.Run) == 0 || p.handle(ctx, s.KV, b)
	})
}

type pending struct {
	msg *nats.Msg
	id  string
}

// handle evaluates a run of event states in order, publishes their
// activity states and dead letters, records progress and acknowledges. It
// reports false if ctx ended first (nothing is acknowledged then; the
// states come again).
func (p *Processor) handle(ctx context.Context, kv jetstream.KeyValue, b eventlog.Batch) bool {
	set := p.engine.Set() // one policy version per batch
	var out []pending
	for _, d := range b.Run {
		msg, seq := d.Msg, d.Seq
		if d.Purged > 0 {
			// Trimmed before we saw them (the processor was down longer
			// than the stream keeps states): reindex rebuilds those.
			p.m.missed.Add(float64(d.Purged))
			p.log.Warn("event states were trimmed before the activity processor saw them; run `eventpipe activities reindex` for that period",
				"from", seq-d.Purged, "to", seq-1)
		}
		rec, err := eventlog.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data(), seq)
		if err != nil {
			// The writer dead-letters undecodable states; nothing to say here.
			continue
		}
		p.m.processed.Inc()
		if rec.Op.Gone() {
			// A deleted or expired event's Activity stays: the timeline
			// keeps what happened.
			continue
		}
		o := set.Evaluate(rec.Event)
		for _, e := range o.Errors {
			p.m.evalErrors.WithLabelValues(e.Policy, e.Rule).Inc()
			out = append(out, pending{msg: deadLetter(msg, seq, e), id: "dlq-" + strconv.FormatUint(seq, 10) + "-" + e.Policy + "-" + e.Rule})
		}
		a := Build(rec, o, d.Stored)
		m, err := encode(rec.Key, a, seq, rec.Op == eventlog.OpCreate)
		if err != nil {
			p.log.Error("cannot encode activity; skipping", "seq", seq, "err", err)
			continue
		}
		out = append(out, pending{msg: m, id: "ev-" + strconv.FormatUint(seq, 10)})
	}
	last := b.Last()
	lastSeq := last.Seq
	if !p.publish(ctx, out) {
		return false
	}
	if p.crashAfterPublish != nil && p.crashAfterPublish() {
		return false
	}
	// Progress first, acknowledgement second: a lost ack costs a
	// re-delivery that the mark skips; a lost mark costs a republish that
	// JetStream deduplicates.
	if _, err := kv.Put(ctx, ProgressKey, []byte(strconv.FormatUint(lastSeq, 10))); err != nil && ctx.Err() == nil {
		p.log.Warn("cannot record progress", "seq", lastSeq, "err", err)
	}
	if err := last.Msg.Ack(); err != nil {
		p.log.Warn("cannot acknowledge batch", "seq", lastSeq, "err", err)
	}
	p.m.progress.Set(float64(lastSeq))
	return true
}

func deadLetter(src jetstream.Msg, seq uint64, e RuleError) *nats.Msg {
	m := nats.NewMsg(DeadLetterSubject)
	m.Header.Set(HeaderSourceSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(HeaderPolicy, e.Policy)
	m.Header.Set(HeaderRule, e.Rule)
	m.Header.Set(HeaderReason, e.Err.Error())
	m.Header.Set("Eventpipe-Dlq-Subject", src.Subject())
	m.Data = src.Data()
	return m
}

// publish stores every message, retrying until all are in or ctx ends.
// After a failure everything from the first failed message on is published
// again, in order, with the same ids: the ones that had succeeded are
// deduplicated, and an older state can never end up after a newer one on
// its subject.
func (p *Processor) publish(ctx context.Context, out []pending) bool {
	backoff := 100 * time.Millisecond
	for len(out) > 0 {
		futures := make([]jetstream.PubAckFuture, 0, len(out))
		firstFail := len(out)
		for i, o := range out {
			stream := StreamName
			if o.msg.Subject == DeadLetterSubject {
				stream = DeadLetterStream
			}
			f, err := p.js.PublishMsgAsync(o.msg, jetstream.WithMsgID(o.id), jetstream.WithExpectStream(stream))
			if err != nil {
				firstFail = i
				break
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case <-f.Ok():
				if out[i].msg.Subject == DeadLetterSubject {
					p.m.deadLetters.Inc()
				} else {
					p.m.published.Inc()
				}
			case err := <-f.Err():
				p.log.Warn("cannot publish activity state; retrying", "subject", out[i].msg.Subject, "err", err)
				firstFail = min(firstFail, i)
			case <-ctx.Done():
				return false
			}
		}
		if firstFail == len(out) {
			return true
		}
		out = out[firstFail:]
		if !retry.Sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return true
}
