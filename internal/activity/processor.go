package activity

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/audit"
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

// Run consumes until ctx ends; it returns nil on cancellation. It reads
// two inputs, each through its own durable consumer and progress mark:
// event states from EVENTS and audit records from AUDIT.
func (p *Processor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() {
		errs <- p.run(ctx, eventlog.StreamName, p.cfg.Consumer, eventlog.SubjectPrefix+".>",
			"eventpipe activity processor: EVENTS -> ACTIVITIES", ProgressKey, p.eventActivities)
	}()
	go func() {
		errs <- p.run(ctx, audit.StreamName, p.cfg.Consumer, audit.SubjectPrefix+".>",
			"eventpipe activity processor: AUDIT -> ACTIVITIES", AuditProgressKey, p.auditActivities)
	}()
	err := <-errs
	cancel()
	if err2 := <-errs; err == nil {
		err = err2
	}
	return err
}

// run consumes one input, turning each delivery into activity states and
// dead letters with build.
func (p *Processor) run(ctx context.Context, stream, consumer, filter, desc, progressKey string,
	build func(set *Set, d eventlog.Delivery, out []pending) []pending) error {
	s, err := p.cfg.durable(p.js, stream, consumer, filter, desc).Resume(ctx, progressKey)
	if err != nil {
		return err
	}
	p.log.Info("activity processor started", "stream", stream, "consumer", consumer, "from", s.Done+1)
	return s.Consume(ctx, p.log, func(ctx context.Context, b eventlog.Batch) bool {
		return len(b.Run) == 0 || p.handle(ctx, s.KV, progressKey, b, build)
	})
}

type pending struct {
	msg *nats.Msg
	id  string
}

// handle evaluates a run of deliveries in order, publishes their activity
// states and dead letters, records progress and acknowledges. It reports
// false if ctx ended first (nothing is acknowledged then; the deliveries
// come again).
func (p *Processor) handle(ctx context.Context, kv jetstream.KeyValue, progressKey string, b eventlog.Batch,
	build func(set *Set, d eventlog.Delivery, out []pending) []pending) bool {
	set := p.engine.Set() // one policy version per batch
	var out []pending
	for _, d := range b.Run {
		out = build(set, d, out)
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
	if _, err := kv.Put(ctx, progressKey, []byte(strconv.FormatUint(lastSeq, 10))); err != nil && ctx.Err() == nil {
		p.log.Warn("cannot record progress", "seq", lastSeq, "err", err)
	}
	if err := last.Msg.Ack(); err != nil {
		p.log.Warn("cannot acknowledge batch", "seq", lastSeq, "err", err)
	}
	if progressKey == ProgressKey {
		p.m.progress.Set(float64(lastSeq))
	}
	return true
}

// eventActivities adds the activity state of one event state.
func (p *Processor) eventActivities(set *Set, d eventlog.Delivery, out []pending) []pending {
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
		return out
	}
	p.m.processed.Inc()
	if rec.Op.Gone() {
		// A deleted or expired event's Activity stays: the timeline
		// keeps what happened.
		return out
	}
	o := set.Evaluate(rec.Event)
	out = p.deadLetters(out, msg, "dlq-", seq, o.Errors)
	a := Build(rec, o, d.Stored)
	m, err := encode(rec.Key, a, seq, rec.Op == eventlog.OpCreate)
	if err != nil {
		p.log.Error("cannot encode activity; skipping", "seq", seq, "err", err)
		return out
	}
	return append(out, pending{msg: m, id: "ev-" + strconv.FormatUint(seq, 10)})
}

// auditActivities adds the activity state of one audit record, when the
// policies keep it. The message id is the Activity's name: a record that
// kube-apiserver resent (stored again in AUDIT past the duplicate window)
// makes no second state.
func (p *Processor) auditActivities(set *Set, d eventlog.Delivery, out []pending) []pending {
	msg, seq := d.Msg, d.Seq
	rec, err := audit.Decode(msg.Subject(), msg.Data(), seq, d.Stored)
	if err != nil {
		p.log.Error("not an audit record; skipping", "seq", seq, "subject", msg.Subject(), "err", err)
		return out
	}
	p.m.auditProcessed.Inc()
	o := set.EvaluateAudit(rec.Event)
	out = p.deadLetters(out, msg, "dlq-audit-", seq, o.Errors)
	if !o.Keep {
		return out
	}
	k := AuditActivityKey(rec)
	m, err := encode(k, BuildAudit(rec, o.Outcome), seq, true)
	if err != nil {
		p.log.Error("cannot encode activity; skipping", "seq", seq, "err", err)
		return out
	}
	return append(out, pending{msg: m, id: "au-" + k.Scope.Type + "/" + k.Scope.Name + "/" + k.Name})
}

// deadLetters adds a dead letter per failed rule; idPrefix tells the
// inputs' sequences apart.
func (p *Processor) deadLetters(out []pending, msg jetstream.Msg, idPrefix string, seq uint64, errs []RuleError) []pending {
	for _, e := range errs {
		p.m.evalErrors.WithLabelValues(e.Policy, e.Rule).Inc()
		out = append(out, pending{msg: deadLetter(msg, seq, e), id: idPrefix + strconv.FormatUint(seq, 10) + "-" + e.Policy + "-" + e.Rule})
	}
	return out
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
