package exporter

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/retry"
)

// Log is what the exporter needs from the EVENTS stream. Both methods are
// safe for concurrent use (eventlog.Publisher and eventlog.Reader are).
type Log interface {
	// Publish stores a state idempotently (by o.MsgID) and returns its
	// sequence once JetStream acknowledged it.
	Publish(ctx context.Context, r *eventlog.Record, o eventlog.PublishOptions) (uint64, error)
	// Latest returns the newest state on subject, nil when there is none.
	Latest(ctx context.Context, subject string) (*eventlog.Record, error)
	// EachLatest calls f with the newest state of every event on subjects
	// matching filter that the stream still holds.
	EachLatest(ctx context.Context, filter string, f func(*eventlog.Record) error) error
}

// Exporter copies one source cluster's Events into the EVENTS stream.
// Create it with New, then call Run (directly, or through RunElected).
type Exporter struct {
	cfg  Config
	cs   kubernetes.Interface
	log  Log
	cps  *checkpoints
	logr *slog.Logger
	m    *metrics

	// sem holds one token per state between the watch and its retirement
	// (acknowledged and behind every earlier state of its stream).
	sem chan struct{}
	// active is true while Run runs.
	active atomic.Bool

	// now is the clock that tells the source's expiries from deletes.
	now func() time.Time

	mu      sync.Mutex         // guards streams
	streams map[string]*stream // by checkpoint key, while Run runs
}

// New returns an exporter reading through cs and writing through log; the
// resume points live in js's EVENTPIPE_STATE bucket (eventlog.Ensure creates
// it). reg may be nil.
func New(ctx context.Context, cfg Config, cs kubernetes.Interface, js jetstream.JetStream, log Log, reg prometheus.Registerer, logr *slog.Logger) (*Exporter, error) {
	cps, err := openCheckpoints(ctx, js)
	if err != nil {
		return nil, err
	}
	e := &Exporter{cfg: cfg, cs: cs, log: log, cps: cps, logr: logr, now: time.Now,
		sem: make(chan struct{}, cfg.MaxInFlight), streams: map[string]*stream{}}
	e.m = newMetrics(reg, e)
	return e, nil
}

// Run exports until ctx ends or a source or log error that retrying cannot
// fix. It writes the resume points one last time before it returns.
func (e *Exporter) Run(ctx context.Context) error {
	e.active.Store(true)
	defer e.active.Store(false)
	src, err := newSource(ctx, e.cs, e.cfg.APIGroup)
	if err != nil {
		return err
	}
	e.logr.Info("exporting events", "api", src.groupVersion(), "cluster", e.cfg.ClusterName, "scope", e.cfg.Scope().String())

	namespaces := e.cfg.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	g, ctx := errgroup.WithContext(ctx)
	queues := make([]chan *entry, e.cfg.Publishers)
	var workers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *entry, e.cfg.MaxInFlight/e.cfg.Publishers+1)
		workers.Add(1)
		go func() {
			defer workers.Done()
			e.publishLoop(ctx, queues[i])
		}()
	}
	var streams []*stream
	for _, ns := range namespaces {
		s := &stream{e: e, src: src, ns: ns, key: CheckpointKey(e.cfg.ClusterName, ns), queues: queues,
			watchDown: time.Now()}
		streams = append(streams, s)
		e.mu.Lock()
		e.streams[s.key] = s
		e.mu.Unlock()
		g.Go(func() error { return s.run(ctx) })
	}
	err = g.Wait()
	workers.Wait()
	// Whatever was acknowledged before the end is kept, so the next leader
	// or the restarted process starts from there.
	saveCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range streams {
		if serr := s.save(saveCtx); serr != nil {
			e.logr.Warn("final checkpoint not written", "key", s.key, "err", serr)
		}
	}
	e.mu.Lock()
	e.streams = map[string]*stream{}
	e.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Healthy reports why the exporter is stuck, or nil. A replica that is not
// exporting (a standby) is healthy.
func (e *Exporter) Healthy() error {
	if !e.active.Load() {
		return nil
	}
	if since := e.watchDownSince(); since != nil && time.Since(*since) > e.cfg.StuckAfter {
		return fmt.Errorf("watch on the source cluster down for %s (--exporter.stuck-after %s)", time.Since(*since).Round(time.Second), e.cfg.StuckAfter)
	}
	if age := e.oldestPending(); age > e.cfg.StuckAfter {
		return fmt.Errorf("a publish to JetStream is unacknowledged for %s (--exporter.stuck-after %s)", age.Round(time.Second), e.cfg.StuckAfter)
	}
	return nil
}

// Ready is Healthy, and, for the exporting replica, every watch open.
func (e *Exporter) Ready() error {
	if err := e.Healthy(); err != nil {
		return err
	}
	if e.active.Load() && e.watchDownSince() != nil {
		return errors.New("watch on the source cluster is not open")
	}
	return nil
}

// eachStream calls f for every running stream, holding the stream's lock,
// which guards the fields the health and metric figures read.
func (e *Exporter) eachStream(f func(*stream)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.streams {
		s.mu.Lock()
		f(s)
		s.mu.Unlock()
	}
}

// watchDownSince returns since when some watch has been down, nil when all
// are open (or none runs).
func (e *Exporter) watchDownSince() *time.Time {
	var oldest *time.Time
	e.eachStream(func(s *stream) {
		if !s.watchDown.IsZero() && (oldest == nil || s.watchDown.Before(*oldest)) {
			t := s.watchDown
			oldest = &t
		}
	})
	return oldest
}

// oldestPending is the age of the oldest state not yet acknowledged.
func (e *Exporter) oldestPending() time.Duration {
	var age time.Duration
	e.eachStream(func(s *stream) {
		for _, en := range s.pending {
			if !en.done && en.rec != nil {
				age = max(age, time.Since(en.queued))
				break
			}
		}
	})
	return age
}

// checkpointAge is the age of the oldest state read but not yet covered by
// a stored resume point.
func (e *Exporter) checkpointAge() time.Duration {
	var age time.Duration
	e.eachStream(func(s *stream) {
		if !s.unsavedSince.IsZero() {
			age = max(age, time.Since(s.unsavedSince))
		}
	})
	return age
}

// entry is one state (or a resume-point marker) on its way to JetStream.
type entry struct {
	s *stream
	// rec is the state to publish; nil for a marker (a bookmark, the end of
	// a list), which only moves the resume point.
	rec   *eventlog.Record
	msgID string
	// rv becomes the resume point once this entry and every earlier one are
	// acknowledged. Empty for listed items: their versions are not in order,
	// only the list's own resourceVersion, on the marker after them, is.
	rv string
	// guard asks the publisher to check the stream first (see stream.guard).
	guard  bool
	queued time.Time
	done   bool // guarded by s.mu
}

// stream is the export of one namespace selection: one list/watch, one
// resume point.
type stream struct {
	e      *Exporter
	src    *source
	ns     string
	key    string
	queues []chan *entry

	// seen is the newest source resourceVersion handed to the publishers;
	// only the stream's goroutine uses it.
	seen uint64
	// guard is how many more states are checked against the stream before
	// they are published; only the stream's goroutine uses it.
	guard int

	mu           sync.Mutex // guards the fields below
	pending      []*entry   // in source order, up to the first unacknowledged and beyond
	acked        string     // resume point: everything before it is acknowledged
	saved        string     // resume point last written
	unsavedSince time.Time  // when the oldest state not covered by saved was read
	watchDown    time.Time  // since when the watch is not open; zero while it is
}

// errExpired says the resume point is older than the source keeps.
var errExpired = errors.New("resource version expired")

func (s *stream) run(ctx context.Context) error {
	rv, err := s.e.cps.load(ctx, s.key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.acked, s.saved = rv, rv
	s.mu.Unlock()
	if rv != "" {
		s.seen, _ = ParseResourceVersion(rv)
	}
	// States after the resume point may have been published by the previous
	// run (acknowledged, but not yet covered by a written resume point).
	// Within the stream's duplicate window JetStream drops them by message
	// id; the guard also covers a restart after a longer outage. At most
	// MaxInFlight states were unacknowledged, plus what was acknowledged
	// between two checkpoint writes; the margin allows for a busy source.
	s.guard = 4*s.e.cfg.MaxInFlight + 10000

	go s.checkpointLoop(ctx)
	reason := "start"
	for {
		if rv == "" {
			s.e.m.relists.WithLabelValues(reason).Inc()
			rv, err = s.relist(ctx)
		} else {
			rv, err = s.watch(ctx, rv)
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errExpired):
			s.e.logr.Warn("resume point expired on the source (410 Gone): relisting", "key", s.key, "resourceVersion", rv)
			rv, reason = "", "expired"
		case err != nil:
			s.e.logr.Warn("source error; retrying", "key", s.key, "err", err)
			if !retry.Sleep(ctx, time.Second+rand.N(time.Second)) {
				return ctx.Err()
			}
		}
	}
}

// relist lists every Event and hands on those changed after s.seen, then
// deletes for the events that were deleted while nobody watched (see
// deleteMissing), then a marker with the list's resourceVersion. It returns
// that version.
func (s *stream) relist(ctx context.Context) (string, error) {
	opts := metav1.ListOptions{Limit: s.e.cfg.ListPageSize}
	listed := map[types.UID]struct{}{} // uids only: the list is not kept
	for {
		items, meta, err := s.src.list(ctx, s.ns, opts)
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			// The continue token outlived the source's compaction: start the
			// list again; what was handed on already is deduplicated.
			opts.Continue = ""
			continue
		}
		if err != nil {
			return "", fmt.Errorf("list events: %w", err)
		}
		for _, ev := range items {
			s.e.m.seen.WithLabelValues("listed").Inc()
			listed[ev.UID] = struct{}{}
			n, err := ParseResourceVersion(ev.ResourceVersion)
			if err != nil {
				return "", fmt.Errorf("list events: %s/%s: %w", ev.Namespace, ev.Name, err)
			}
			if n <= s.seen {
				continue // its state at n or a later one was handed on before
			}
			if err := s.add(ctx, change{op: opForListed(ev), ev: ev}, ""); err != nil {
				return "", err
			}
		}
		if meta.Continue == "" {
			n, err := ParseResourceVersion(meta.ResourceVersion)
			if err != nil {
				return "", fmt.Errorf("list events: %w", err)
			}
			if err := s.deleteMissing(ctx, listed); err != nil {
				return "", err
			}
			if err := s.mark(ctx, meta.ResourceVersion); err != nil {
				return "", err
			}
			s.seen = max(s.seen, n)
			return meta.ResourceVersion, nil
		}
		opts.Continue = meta.Continue
	}
}

// watch watches from rv until the watch ends, and returns the version to
// continue from; errExpired when rv is too old.
func (s *stream) watch(ctx context.Context, rv string) (string, error) {
	// A server-side timeout spreads reconnections of many exporters out and
	// proves regularly that the watch still works.
	timeout := int64(300 + rand.IntN(300))
	w, err := s.src.watch(ctx, s.ns, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return rv, errExpired
	}
	if err != nil {
		return rv, fmt.Errorf("watch events from %s: %w", rv, err)
	}
	defer w.Stop()
	s.setWatchDown(false)
	defer s.setWatchDown(true)
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, ctx.Err()
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, nil
		}
		s.e.m.sawEvent()
		switch ev.Type {
		case watch.Error:
			status := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(status) || apierrors.IsGone(status) {
				return rv, errExpired
			}
			return rv, fmt.Errorf("watch events from %s: %w", rv, status)
		case watch.Bookmark:
			_, brv, err := toCore(ev.Object)
			if err != nil {
				return rv, err
			}
			if err := s.mark(ctx, brv); err != nil {
				return rv, err
			}
			if n, err := ParseResourceVersion(brv); err == nil {
				s.seen = max(s.seen, n)
			}
			rv = brv
			continue
		}
		obj, orv, err := toCore(ev.Object)
		if err != nil {
			return rv, err
		}
		n, err := ParseResourceVersion(orv)
		if err != nil {
			return rv, fmt.Errorf("watch events: %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		c := change{ev: obj}
		switch ev.Type {
		case watch.Added:
			c.op = eventlog.OpCreate
			s.e.m.seen.WithLabelValues("added").Inc()
		case watch.Modified:
			c.op = eventlog.OpUpdate
			s.e.m.seen.WithLabelValues("modified").Inc()
		case watch.Deleted:
			c.op = eventlog.OpDelete
			if isExpiry(obj, s.e.cfg.SourceEventTTL, s.e.now()) {
				// The source's TTL, not a delete: eventpipe keeps the event.
				s.e.m.seen.WithLabelValues("expired").Inc()
				if err := s.mark(ctx, orv); err != nil {
					return rv, err
				}
				s.seen = max(s.seen, n)
				rv = orv
				continue
			}
			s.e.m.seen.WithLabelValues("deleted").Inc()
		default:
			return rv, fmt.Errorf("watch delivered an event of type %q", ev.Type)
		}
		if n > s.seen {
			if err := s.add(ctx, c, orv); err != nil {
				return rv, err
			}
			s.seen = n
		}
		rv = orv
	}
}

// deleteMissing hands on a delete for every event that eventpipe holds as
// live from this cluster and namespace, that the relist did not find, and
// that the source cannot have expired (written less than --exporter.source-event-ttl
// ago, by the event's own times: the exported state has no managedFields,
// and its times are never later than its write). Such an event was deleted
// while the exporter was not watching and the source compacted that
// history away; a relist is the only way to notice. An event the source may
// have expired is kept, as a watched expiry is (see isExpiry). The delete
// carries the last exported state, and its message id that state's source
// resourceVersion: replicas and repeated relists derive the same one.
func (s *stream) deleteMissing(ctx context.Context, listed map[types.UID]struct{}) error {
	var nsp *string
	if s.ns != metav1.NamespaceAll {
		nsp = &s.ns
	}
	sc := s.e.cfg.Scope()
	now := s.e.now()
	var gone []*corev1.Event
	err := s.e.log.EachLatest(ctx, eventlog.FilterSubject(&sc, nsp), func(r *eventlog.Record) error {
		ev := r.Event
		if r.Op == eventlog.OpDelete || ev.Labels[LabelSourceCluster] != s.e.cfg.ClusterName {
			return nil
		}
		if _, ok := listed[ev.UID]; ok || isExpiry(ev, s.e.cfg.SourceEventTTL, now) {
			return nil
		}
		gone = append(gone, ev)
		return nil
	})
	if err != nil {
		return fmt.Errorf("find events deleted while not watching: %w", err)
	}
	for _, ev := range gone {
		ev.ResourceVersion = ev.Annotations[AnnotationSourceResourceVersion]
		s.e.m.seen.WithLabelValues("missing").Inc()
		if err := s.add(ctx, change{op: eventlog.OpDelete, ev: ev}, ""); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		s.e.logr.Info("exported deletes for events deleted while not watching", "key", s.key, "events", len(gone))
	}
	return nil
}

func (s *stream) setWatchDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.watchDown = time.Now()
	} else {
		s.watchDown = time.Time{}
	}
}

// add hands a state to its publisher. It blocks while MaxInFlight states
// are pending: that is the backpressure on the watch.
func (s *stream) add(ctx context.Context, c change, rv string) error {
	rec := exportedRecord(s.e.cfg.ClusterName, s.e.cfg.Scope(), c)
	en := &entry{s: s, rec: rec, rv: rv, msgID: MsgID(s.e.cfg.ClusterName, string(c.ev.UID), c.ev.ResourceVersion, c.op)}
	if s.guard > 0 {
		s.guard--
		en.guard = true
	}
	if err := s.enqueue(ctx, en); err != nil {
		return err
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(eventlog.Subject(rec.Key)))
	select {
	case s.queues[h.Sum32()%uint32(len(s.queues))] <- en:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mark moves the resume point to rv once everything before it is
// acknowledged.
func (s *stream) mark(ctx context.Context, rv string) error {
	en := &entry{s: s, rv: rv}
	if err := s.enqueue(ctx, en); err != nil {
		return err
	}
	s.retire(en)
	return nil
}

func (s *stream) enqueue(ctx context.Context, en *entry) error {
	select {
	case s.e.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	en.queued = time.Now()
	s.mu.Lock()
	s.pending = append(s.pending, en)
	if s.unsavedSince.IsZero() {
		s.unsavedSince = en.queued
	}
	s.mu.Unlock()
	return nil
}

// retire marks en acknowledged and moves the resume point over the
// acknowledged prefix of pending.
func (s *stream) retire(en *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	en.done = true
	n := 0
	for n < len(s.pending) && s.pending[n].done {
		if rv := s.pending[n].rv; rv != "" {
			s.acked = rv
		}
		s.pending[n] = nil
		n++
		<-s.e.sem
	}
	s.pending = s.pending[n:]
}

// checkpointLoop writes the resume point every CheckpointInterval when it
// moved.
func (s *stream) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(s.e.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.save(ctx); err != nil && ctx.Err() == nil {
			s.e.logr.Warn("checkpoint not written; will retry", "key", s.key, "err", err)
		}
	}
}

// save writes the resume point if it moved.
func (s *stream) save(ctx context.Context) error {
	s.mu.Lock()
	acked, saved := s.acked, s.saved
	var oldest time.Time
	if len(s.pending) > 0 {
		oldest = s.pending[0].queued
	}
	s.mu.Unlock()
	if acked == saved {
		return nil
	}
	if err := s.e.cps.store(ctx, s.key, acked); err != nil {
		return err
	}
	s.e.m.checkpoints.Inc()
	s.mu.Lock()
	s.saved = acked
	// What is still pending is not covered; the rest is.
	s.unsavedSince = oldest
	s.mu.Unlock()
	return nil
}

// publishLoop publishes the entries of one queue in order.
func (e *Exporter) publishLoop(ctx context.Context, q chan *entry) {
	for {
		select {
		case <-ctx.Done():
			return
		case en := <-q:
			if err := e.publish(ctx, en); err != nil {
				return // ctx ended
			}
			en.s.retire(en)
		}
	}
}

// publish stores en, retrying until JetStream acknowledges it or ctx ends.
// A state JetStream can never take (too large, say) is logged, counted and
// passed over, so that it cannot stop the export for ever.
func (e *Exporter) publish(ctx context.Context, en *entry) error {
	if en.guard {
		stored, err := e.alreadyStored(ctx, en.rec)
		if err != nil {
			return err
		}
		if stored {
			e.m.skipped.WithLabelValues("stored").Inc()
			return nil
		}
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := e.log.Publish(pctx, en.rec, eventlog.PublishOptions{MsgID: en.msgID})
		cancel()
		if err == nil {
			e.m.published.Inc()
			e.m.exported(en.rec.Event)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.m.publishErrors.Inc()
		if !eventlog.IsRetryable(err) && attempt >= 5 {
			e.m.skipped.WithLabelValues("unpublishable").Inc()
			e.logr.Error("event state cannot be published; skipped", "subject", eventlog.Subject(en.rec.Key), "msgID", en.msgID, "err", err)
			return nil
		}
		e.logr.Warn("publish failed; retrying", "subject", eventlog.Subject(en.rec.Key), "attempt", attempt, "err", err)
		if !retry.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// alreadyStored reports whether the newest state on rec's subject is this
// source object at this or a later source version: then publishing rec
// again would store a duplicate, or put an older state on top of a newer one.
func (e *Exporter) alreadyStored(ctx context.Context, rec *eventlog.Record) (bool, error) {
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		latest, err := e.log.Latest(lctx, eventlog.Subject(rec.Key))
		cancel()
		if err == nil {
			if latest == nil || latest.Event.UID != rec.Event.UID {
				return false, nil
			}
			have, ok1 := sourceVersion(latest.Event)
			want, ok2 := sourceVersion(rec.Event)
			return ok1 && ok2 && (have > want || have == want && latest.Op == rec.Op), nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		e.logr.Warn("read newest state failed; retrying", "subject", eventlog.Subject(rec.Key), "err", err)
		if !retry.Sleep(ctx, time.Second) {
			return false, ctx.Err()
		}
	}
}
