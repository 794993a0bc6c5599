package watchtail

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// errHubStopped ends the hub's tails without an error: the hub stopped
// because its server is stopping.
var errHubStopped = errors.New("shared watch tail stopped with its server")

// errHubIdle is the hub's state after it stopped for want of watches; it
// had none to end.
var errHubIdle = errors.New("shared watch tail stopped: no watches")

// HubSize is how many of the newest states a Hub keeps for watches that
// start a little behind the stream's end, as informers do (they watch from
// the resourceVersion of their list, which trails the stream by the
// writer's batch wait). 8,192 states are 8 seconds at 1,000 a second, and
// about a second at the highest create rate measured. Only the newest
// hubDecoded of them are kept decoded; the others take about 1 KB each.
const HubSize = 1 << 13

// hubDecoded is how many of the ring's newest states the hub keeps decoded,
// with what its watches derive from them (see Memo). Older ones keep
// only their message (subject, body, operation and Prev): a watch that
// starts that far behind decodes them again for itself. A decoded state with
// its encodings takes about 5 KB of the heap and hundreds of pointers for
// the garbage collector to trace; a message about 1 KB and a few. Watches that keep up,
// and informers that watch from a list's resourceVersion, read the newest
// states, so this keeps most of what the ring costs out of the API server's
// live heap, which sets both its resident memory and how long each
// collection's mark phase (when the slowest deliveries happen) lasts.
const hubDecoded = 1 << 10

// Hub is one tail of the whole EVENTS stream shared by every watch of an
// API server: each state is read from JetStream and decoded once, kept in a
// ring of the newest HubSize states, and handed to each watch whose subjects
// it is on. With per-watch tails every state crossed the NATS connection,
// was decoded and was filtered once per watch; with a hundred watches of
// every namespace that was a third of the server's CPU. A watch from before
// what the ring holds gets a tail of its own (see Source).
//
// The hub reads only while it is used, by watches or by consistent lists
// (Range): it starts at the first use (which, not yet served, reads the log
// on its own) and stops after hubIdle without any, so that a server nobody
// watches or lists does not read and decode every state of the stream.
type Hub struct {
	r   *eventlog.StreamReader[*eventlog.Raw]
	log *slog.Logger
	ctx context.Context // the server's: the hub stops with it
	// idleAfter and idleCheck are hubIdle and hubIdleCheck (tests shorten them).
	idleAfter, idleCheck time.Duration
	// decoded is hubDecoded (tests make it smaller).
	decoded uint64

	mu      sync.Mutex
	gen     uint64 // counts the hub's tails: a restart starts a new ring
	started bool   // run is active (reading, or retrying to)
	tails   int    // HubTails not yet ended
	idle    time.Time
	running bool
	floor   uint64 // every state from floor on is in the ring or still to come
	ring    []hubEntry
	total   uint64        // states appended since the hub's tail started
	last    uint64        // sequence of the newest state appended, or floor-1
	wake    chan struct{} // closed and replaced when states were appended (see hubWakeEvery) or the tail ends
	err     error         // why the hub's tail ended; new states stop
}

// hubEntry is one state in the ring. seq and subject repeat msg's, so
// that the watches scanning the ring need not follow a pointer to skip a
// state. rec and derived are nil once the state is older than the hub's
// newest decoded ones; msg is kept to decode it again.
type hubEntry struct {
	seq     uint64
	subject string
	rec     *eventlog.Record
	derived *derived
	msg     *eventlog.Raw
}

// state returns e's state: the hub's shared one, or one decoded now for the
// caller alone.
func (e hubEntry) state() (State, error) {
	if e.rec != nil {
		return State{Record: e.rec, derived: e.derived}, nil
	}
	rec, err := e.msg.Decode()
	return State{Record: rec}, err
}

// NewHub returns a hub on r's stream that reads, from the stream's end,
// while it has watches and ctx lasts. While JetStream is unreachable the
// hub retries every second, and Tail refuses (callers then use tails of
// their own).
func NewHub(ctx context.Context, r *eventlog.Reader, log *slog.Logger) *Hub {
	return newHub(ctx, r, log, HubSize)
}

func newHub(ctx context.Context, r *eventlog.Reader, log *slog.Logger, size int) *Hub {
	// The hub's own reader of the same stream keeps each message, to be
	// decoded again once the ring no longer holds its record.
	raw := eventlog.WithDecoder(r, eventlog.ReadRaw)
	return &Hub{r: raw, log: log, ctx: ctx, ring: make([]hubEntry, size), wake: make(chan struct{}),
		idleAfter: hubIdle, idleCheck: hubIdleCheck, decoded: hubDecoded}
}

// hubIdle is how long a hub keeps reading without watches; hubIdleCheck
// how often it looks.
const hubIdle, hubIdleCheck = time.Minute, 10 * time.Second

// stopIfIdle ends run (started false) when the hub has had no watches for
// hubIdle; the caller holds h.mu.
func (h *Hub) stopIfIdle() bool {
	if h.tails > 0 || time.Since(h.idle) < h.idleAfter {
		return false
	}
	h.started, h.running, h.err = false, false, errHubIdle
	return true
}

func (h *Hub) run() {
	ctx := h.ctx
	for ctx.Err() == nil {
		h.mu.Lock()
		stop := h.stopIfIdle()
		h.mu.Unlock()
		if stop {
			return
		}
		// From a ring's worth before the end: watches that start just
		// behind the end (from the resourceVersion of a list) are served
		// from the start.
		first, last, err := h.r.Bounds(ctx)
		from := max(first, last+1-min(last, uint64(len(h.ring))))
		var tail *eventlog.StreamTail[*eventlog.Raw]
		if err == nil {
			tail, err = h.r.Tail(ctx, eventlog.SubjectPrefix+".>", from)
		}
		if err != nil {
			h.log.Warn("shared watch tail cannot start; watches use tails of their own", "err", err)
		} else {
			h.mu.Lock()
			h.gen++
			h.running, h.floor, h.last, h.total, h.err = true, from, from-1, 0, nil
			h.mu.Unlock()
			if h.consume(tail) {
				return // idle: stopped, a later watch starts it again
			}
			err = tail.Err()
			switch {
			case ctx.Err() != nil:
				// The server is stopping: its watches just end, as their own
				// tails would, and clients resume elsewhere.
				err = errHubStopped
			case err == nil:
				err = errors.New("shared watch tail stopped")
			}
			h.mu.Lock()
			h.running, h.err = false, err
			close(h.wake)
			h.wake = make(chan struct{})
			h.mu.Unlock()
			if ctx.Err() == nil {
				h.log.Warn("shared watch tail ended; its watches end and are resumed by their clients", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// consume appends tail's states until it ends, or until the hub has been
// without watches for hubIdle, when it stops the tail and reports true.
func (h *Hub) consume(tail *eventlog.StreamTail[*eventlog.Raw]) (idle bool) {
	t := time.NewTicker(h.idleCheck)
	defer t.Stop()
	// Watches are woken at most every hubWakeEvery: pending says a wake is
	// due when wakeT fires.
	wakeT := time.NewTimer(time.Hour)
	wakeT.Stop()
	defer wakeT.Stop()
	var lastWake time.Time
	pending := false
	for {
		select {
		case m, ok := <-tail.C:
			if !ok {
				if pending {
					h.wakeTails()
				}
				return false
			}
			rec, err := m.Decode()
			if err != nil {
				continue // not a valid state: the writer dead-letters it
			}
			h.append(rec, m)
			if pending {
				continue
			}
			if d := hubWakeEvery - time.Since(lastWake); d > 0 {
				pending = true
				wakeT.Reset(d)
				continue
			}
			h.wakeTails()
			lastWake = time.Now()
		case <-wakeT.C:
			pending = false
			h.wakeTails()
			lastWake = time.Now()
		case <-t.C:
			h.mu.Lock()
			stop := h.stopIfIdle()
			h.mu.Unlock()
			if stop {
				tail.Stop()
				return true
			}
		}
	}
}

func (h *Hub) append(rec *eventlog.Record, m *eventlog.Raw) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := uint64(len(h.ring))
	i := h.total % n
	if h.total >= n {
		h.floor = h.ring[i].seq + 1 // the overwritten state is no longer served
	}
	h.ring[i] = hubEntry{seq: rec.Seq, subject: m.Subject, rec: rec, derived: &derived{}, msg: m}
	h.total++
	h.last = rec.Seq
	if d := h.decoded; d < n && h.total > d {
		// The state d behind the newest leaves the decoded part. Watches
		// holding its record keep it; new readers decode it again.
		e := &h.ring[(h.total-1-d)%n]
		e.rec, e.derived = nil, nil
	}
}

// hubWakeEvery is how often, at most, the hub wakes its watches. A state
// that comes within hubWakeEvery of the last wake waits for the next one, so
// that under load each watch takes several states per wake: its handler
// then encodes them back to back and flushes once, which makes one HTTP/2
// frame and one write where there were several. With 100 watches of 1,000
// states a second this took 15 to 22 % off the server's CPU and lowered
// the p99 of delivery (bench/README.md, "Watch wake-ups"); a lone state
// after a quiet spell is not held at all.
const hubWakeEvery = 2 * time.Millisecond

// wakeTails wakes every watch waiting for new states.
func (h *Hub) wakeTails() {
	h.mu.Lock()
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// Tail returns a feed of the states on subjects matching filter (as
// eventlog.FilterSubject makes it) from sequence from on, or false when the hub
// cannot serve it (not reading yet, or from is older than the ring). A hub
// that is not reading starts.
func (h *Hub) Tail(ctx context.Context, filter string, from uint64) (*HubTail, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		h.started, h.idle = true, time.Now()
		go h.run()
	}
	if !h.running || from < h.floor {
		return nil, false
	}
	h.tails++
	// The first retained entry at or after from; entries are in sequence order.
	kept := min(h.total, uint64(len(h.ring)))
	oldest := h.total - kept
	k := sort.Search(int(kept), func(j int) bool {
		return h.ring[(oldest+uint64(j))%uint64(len(h.ring))].seq >= from
	})
	t := &HubTail{h: h, gen: h.gen, filter: filter, from: from, pos: oldest + uint64(k), c: make(chan State, 64), done: make(chan struct{})}
	t.scanned.Store(from - 1)
	go t.run(ctx)
	return t, true
}

// Range returns, in order, the states on subjects matching filter (as
// eventlog.FilterSubject makes it) whose sequences are after after and at most upto,
// waiting up to wait for the hub to read up to upto; ok is false when the
// hub cannot serve it (not reading, states after after already overwritten,
// or upto not reached in time). Consistent lists read the states the
// writer has not committed yet this way. The records are the hub's own and
// read-only, except those decoded again for this call. A hub that is not
// reading starts, and a Range keeps it reading for hubIdle as a watch does.
func (h *Hub) Range(ctx context.Context, filter string, after, upto uint64, wait time.Duration) ([]*eventlog.Record, bool) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	h.mu.Lock()
	if !h.started {
		h.started = true
		go h.run()
	}
	if h.tails == 0 {
		h.idle = time.Now()
	}
	for h.running && h.last < upto {
		wake, gen := h.wake, h.gen
		h.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
		h.mu.Lock()
		if h.gen != gen {
			break // restarted: the checks below decide
		}
	}
	if !h.running || h.last < upto || after+1 < h.floor {
		h.mu.Unlock()
		return nil, false
	}
	n := uint64(len(h.ring))
	kept := min(h.total, n)
	oldest := h.total - kept
	k := sort.Search(int(kept), func(j int) bool { return h.ring[(oldest+uint64(j))%n].seq > after })
	var entries []hubEntry
	for p := oldest + uint64(k); p < h.total; p++ {
		e := h.ring[p%n]
		if e.seq > upto {
			break
		}
		if eventlog.SubjectMatches(filter, e.subject) {
			entries = append(entries, e)
		}
	}
	h.mu.Unlock()
	out := make([]*eventlog.Record, 0, len(entries))
	for _, e := range entries {
		st, err := e.state()
		if err != nil {
			continue // decoded once already; the writer dead-letters what is not a state
		}
		out = append(out, st.Record)
	}
	return out, true
}

// HubTail is one watch's Feed from a Hub. The records it delivers are the
// hub's own, the same for every watch: read-only (see State).
type HubTail struct {
	h      *Hub
	gen    uint64
	filter string
	// from is the first sequence to deliver: the hub may not have read up
	// to it yet when the watch starts, and must not hand on what is older.
	from uint64
	pos  uint64 // next ring position to read; only run uses it
	c    chan State
	done chan struct{}
	once sync.Once
	err  error
	// scanned is the sequence of the newest state looked at, sent or not;
	// sent the sequence of the newest state sent on c.
	scanned, sent atomic.Uint64
}

var _ Feed[State] = (*HubTail)(nil)

// States implements Feed.
func (t *HubTail) States() <-chan State { return t.c }

// Stop implements Feed.
func (t *HubTail) Stop() { t.once.Do(func() { close(t.done) }) }

// Err implements Feed.
func (t *HubTail) Err() error { return t.err }

// Caught implements Feed: every state up to the newest the hub has read
// has been looked at, and the caller has taken what was sent.
func (t *HubTail) Caught(_ context.Context, processed uint64) (uint64, bool) {
	t.h.mu.Lock()
	last := t.h.last
	t.h.mu.Unlock()
	if t.scanned.Load() < last || t.sent.Load() > processed {
		return 0, false
	}
	return last, true
}

func (t *HubTail) run(ctx context.Context) {
	defer close(t.c)
	defer func() {
		t.h.mu.Lock()
		if t.h.tails--; t.h.tails == 0 {
			t.h.idle = time.Now()
		}
		t.h.mu.Unlock()
	}()
	batch := make([]hubEntry, 0, 256)
	for {
		h := t.h
		h.mu.Lock()
		if h.gen != t.gen {
			h.mu.Unlock()
			t.err = errors.New("the shared watch tail restarted")
			return
		}
		kept := min(h.total, uint64(len(h.ring)))
		if t.pos < h.total-kept {
			h.mu.Unlock()
			t.err = ErrFellBehind
			return
		}
		batch = batch[:0]
		for ; t.pos < h.total && len(batch) < cap(batch); t.pos++ {
			batch = append(batch, h.ring[t.pos%uint64(len(h.ring))])
		}
		wake, herr, running := h.wake, h.err, h.running
		h.mu.Unlock()
		if len(batch) == 0 {
			if !running && herr != nil {
				if herr != errHubStopped {
					t.err = herr
				}
				return
			}
			select {
			case <-wake:
				continue
			case <-t.done:
				return
			case <-ctx.Done():
				return
			}
		}
		for _, e := range batch {
			if e.seq >= t.from && eventlog.SubjectMatches(t.filter, e.subject) {
				// The same record for every watch: read-only, with what the
				// watches derive from it shared (Memo); or, for a watch this
				// far behind, its own.
				st, err := e.state()
				if err != nil {
					t.err = err // decoded once already: not expected
					return
				}
				select {
				case t.c <- st:
					t.sent.Store(e.seq)
				case <-t.done:
					return
				case <-ctx.Done():
					return
				}
			}
			t.scanned.Store(max(e.seq, t.from-1))
		}
	}
}
