package etcdfront

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// progressID is the watch ID of a progress response to a progress request:
// it is for every watch of the stream (clientv3.InvalidWatchID).
const progressID = -1

// maxBatch bounds the events of one watch response.
const maxBatch = 1000

// Values derived once per shared state, whichever watch encodes it first.
var (
	valueMemo = watchtail.NewMemo[[]byte]("etcd value")
	prevMemo  = watchtail.NewMemo[[]byte]("etcd previous value")
)

// watchStream is one Watch call: the watches its client created on it.
type watchStream struct {
	s      *Server
	sc     scope.Scope
	stream pb.Watch_WatchServer

	sendMu sync.Mutex // serializes stream.Send
	broken bool       // a Send failed: the stream is gone

	mu       sync.Mutex
	watchers map[int64]*watcher
	nextID   int64
	wg       sync.WaitGroup
}

// watcher is one watch of a stream.
type watcher struct {
	ws     *watchStream
	id     int64
	cancel context.CancelFunc
	// progress asks the watch for the revision up to which it has sent
	// everything; it answers on the channel it is given, ok false when
	// states are on their way.
	progress chan chan caught
}

type caught struct {
	rev uint64
	ok  bool
}

// send sends one response on the watch's stream; false when the stream is
// gone.
func (w *watcher) send(r *pb.WatchResponse) bool { return w.ws.send(r) }

func (ws *watchStream) send(r *pb.WatchResponse) bool {
	ws.sendMu.Lock()
	defer ws.sendMu.Unlock()
	if ws.broken {
		return false
	}
	if err := ws.stream.Send(r); err != nil {
		ws.broken = true
		return false
	}
	return true
}

// Watch implements pb.WatchServer.
func (s *Server) Watch(stream pb.Watch_WatchServer) error {
	sc, err := s.scopeOf(stream.Context())
	if err != nil {
		return err
	}
	ws := &watchStream{s: s, sc: sc, stream: stream, watchers: map[int64]*watcher{}}
	ctx, cancel := context.WithCancel(stream.Context())
	defer ws.wg.Wait()
	defer cancel()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed the stream or went away
		}
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest == nil {
				continue
			}
			if !ws.create(ctx, u.CreateRequest) {
				return nil
			}
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest != nil {
				ws.cancelWatch(u.CancelRequest.WatchId)
			}
		case *pb.WatchRequest_ProgressRequest:
			ws.wg.Add(1)
			go func() {
				defer ws.wg.Done()
				ws.progressAll(ctx)
			}()
		}
	}
}

// create starts one watch and answers Created (or a refusal); false when
// the stream is gone.
func (ws *watchStream) create(ctx context.Context, r *pb.WatchCreateRequest) bool {
	s := ws.s
	ws.mu.Lock()
	id := r.WatchId
	if id == 0 {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil || id < 0 {
		ws.mu.Unlock()
		return ws.send(&pb.WatchResponse{Header: s.header(0), WatchId: id, Created: true, Canceled: true,
			CancelReason: rpctypes.ErrGRPCDuplicateKey.Error()})
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{ws: ws, id: id, cancel: cancel, progress: make(chan chan caught)}
	ws.watchers[id] = w
	ws.mu.Unlock()

	head, err := s.head(ctx)
	if err != nil {
		ws.remove(id)
		return ws.send(&pb.WatchResponse{Header: s.header(0), WatchId: id, Created: true, Canceled: true, CancelReason: err.Error()})
	}
	if !ws.send(&pb.WatchResponse{Header: s.header(head), WatchId: id, Created: true}) {
		ws.remove(id)
		return false
	}
	start := r.StartRevision
	if start <= 0 {
		start = int64(head) + 1
	}
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		defer ws.remove(id)
		defer func() {
			// One watch's failure must not end the front for every
			// cluster, as a handler's would not (recoverInto).
			if p := recover(); p != nil {
				s.log.Error("etcd front: a watch failed", "watch", id, "panic", p)
				w.canceled(fmt.Sprintf("etcdserver: internal error: %v", p), 0)
			}
		}()
		if len(r.RangeEnd) == 0 && string(r.Key) == compactRevKey {
			s.watchCompactKey(wctx, ws.sc, w, start)
			return
		}
		w.run(wctx, r, start)
	}()
	return true
}

// remove forgets a watch and ends it.
func (ws *watchStream) remove(id int64) {
	ws.mu.Lock()
	w := ws.watchers[id]
	delete(ws.watchers, id)
	ws.mu.Unlock()
	if w != nil {
		w.cancel()
	}
}

// cancelWatch ends a watch at its client's request.
func (ws *watchStream) cancelWatch(id int64) {
	ws.mu.Lock()
	_, ok := ws.watchers[id]
	ws.mu.Unlock()
	if !ok {
		return
	}
	ws.remove(id)
	ws.send(&pb.WatchResponse{Header: ws.s.header(0), WatchId: id, Canceled: true})
}

// canceled ends a watch with a reason its client sees as the error.
func (w *watcher) canceled(reason string, compactRev int64) {
	w.send(&pb.WatchResponse{Header: w.ws.s.header(0), WatchId: w.id, Canceled: true, CancelReason: reason, CompactRevision: compactRev})
}

// progressPoll is how often a progress request asks its watches again
// while states are on their way to one of them.
const progressPoll = 20 * time.Millisecond

// progressAll answers a progress request: once every watch of the stream
// has sent everything up to a revision, one response at that revision for
// all of them, as etcd answers when its watchers are synced.
func (ws *watchStream) progressAll(ctx context.Context) {
	for {
		ws.mu.Lock()
		watchers := make([]*watcher, 0, len(ws.watchers))
		for _, w := range ws.watchers {
			watchers = append(watchers, w)
		}
		ws.mu.Unlock()
		rev, err := ws.s.head(ctx)
		if err != nil {
			return
		}
		all := true
		for _, w := range watchers {
			reply := make(chan caught, 1)
			select {
			case w.progress <- reply:
			case <-ctx.Done():
				return
			case <-time.After(progressPoll):
				all = false
				continue
			}
			c := <-reply
			if !c.ok {
				all = false
				continue
			}
			rev = min(rev, c.rev)
		}
		if all {
			ws.send(&pb.WatchResponse{Header: ws.s.header(rev), WatchId: progressID})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(progressPoll):
		}
	}
}

// run feeds the watch from the shared tail until ctx ends or the client
// cancels it.
func (w *watcher) run(ctx context.Context, r *pb.WatchCreateRequest, start int64) {
	s := w.ws.s
	sc := w.ws.sc
	sp, inSpace := s.keys.spanOf(r.Key, r.RangeEnd)
	if !inSpace {
		// No event can change there (etcd would watch it all the same).
		w.idle(ctx, uint64(start-1), r.ProgressNotify)
		return
	}
	if compacted := s.compactedRev(sc); start < compacted {
		// As etcd: a watch may start at the compaction revision itself.
		w.canceled(rpctypes.ErrGRPCCompacted.Error(), compacted)
		return
	}
	first, _, err := s.d.Log.Bounds(ctx)
	if err != nil {
		w.canceled(unavailable("read the log's bounds", err).Error(), 0)
		return
	}
	if uint64(start) < first {
		// The log no longer holds what follows start.
		w.canceled(rpctypes.ErrGRPCCompacted.Error(), int64(first)-1)
		return
	}
	var nsp *string
	if sp.namespace != "" {
		nsp = &sp.namespace
	}
	filter := eventlog.FilterSubject(&sc, nsp)
	var noPut, noDelete bool
	for _, f := range r.Filters {
		noPut = noPut || f == pb.WatchCreateRequest_NOPUT
		noDelete = noDelete || f == pb.WatchCreateRequest_NODELETE
	}
	var tick <-chan time.Time
	if r.ProgressNotify {
		t := time.NewTicker(s.cfg.ProgressInterval)
		defer t.Stop()
		tick = t.C
	}
	processed := uint64(start - 1) // every state up to it was handled
	var feed watchtail.Feed[watchtail.State]
	defer func() {
		if feed != nil {
			feed.Stop()
		}
	}()
	s.d.Metrics.watches.Inc()
	defer s.d.Metrics.watches.Dec()
	for {
		if feed == nil {
			f, err := s.d.Log.Tail(ctx, filter, processed+1)
			if err != nil {
				if ctx.Err() == nil {
					w.canceled(unavailable("follow the log", err).Error(), 0)
				}
				return
			}
			feed = f
		}
		select {
		case <-ctx.Done():
			return
		case st, ok := <-feed.States():
			if !ok {
				err := feed.Err()
				feed = nil
				if ctx.Err() != nil {
					return
				}
				if err == nil || errors.Is(err, watchtail.ErrFellBehind) {
					continue // resume from the last state handled, on a tail of its own
				}
				w.canceled(unavailable("follow the log", err).Error(), 0)
				return
			}
			batch := []watchtail.State{st}
		drain:
			for len(batch) < maxBatch {
				select {
				case st, ok := <-feed.States():
					if !ok {
						break drain
					}
					batch = append(batch, st)
				default:
					break drain
				}
			}
			var events []*mvccpb.Event
			for _, st := range batch {
				ev, err := w.event(st, sp, r.PrevKv)
				if err != nil {
					s.log.Error("etcd front: a stored state cannot be encoded; the watch ends", "seq", st.Record.Seq, "err", err)
					w.canceled(err.Error(), 0)
					return
				}
				if ev != nil && !(noPut && ev.Type == mvccpb.PUT) && !(noDelete && ev.Type == mvccpb.DELETE) {
					events = append(events, ev)
				}
			}
			last := batch[len(batch)-1].Record.Seq
			if len(events) > 0 && !w.send(&pb.WatchResponse{Header: s.header(last), WatchId: w.id, Events: events}) {
				return
			}
			s.d.Metrics.watchEvents.Add(float64(len(events)))
			processed = last
		case <-tick:
			if rev, ok := feed.Caught(ctx, processed); ok {
				if !w.send(&pb.WatchResponse{Header: s.header(max(rev, processed)), WatchId: w.id}) {
					return
				}
			}
		case reply := <-w.progress:
			rev, ok := feed.Caught(ctx, processed)
			reply <- caught{rev: max(rev, processed), ok: ok}
		}
	}
}

// idle is a watch of keys no event has: it answers progress with the head.
func (w *watcher) idle(ctx context.Context, processed uint64, notify bool) {
	var tick <-chan time.Time
	if notify {
		t := time.NewTicker(w.ws.s.cfg.ProgressInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if rev, err := w.ws.s.head(ctx); err == nil && !w.send(&pb.WatchResponse{Header: w.ws.s.header(max(rev, processed)), WatchId: w.id}) {
				return
			}
		case reply := <-w.progress:
			rev, err := w.ws.s.head(ctx)
			reply <- caught{rev: max(rev, processed), ok: err == nil}
		}
	}
}

// event is the etcd event of one state, nil when its key is outside the
// watched range.
func (w *watcher) event(st watchtail.State, sp span, prevKV bool) (*mvccpb.Event, error) {
	s := w.ws.s
	rec := st.Record
	if !sp.contains(relKey(rec)) {
		return nil, nil
	}
	key := s.keys.keyOf(rec)
	rev := int64(rec.Seq)
	value, err := s.encodeShared(st, valueMemo, rec.Event)
	if err != nil {
		return nil, err
	}
	if rec.Op.Gone() {
		// etcd's delete event has the key and revision; the previous value
		// is the deleted state, which kube-apiserver asks for.
		ev := &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: key, ModRevision: rev}}
		if prevKV {
			ev.PrevKv = &mvccpb.KeyValue{Key: key, Value: value, Version: 1, Lease: rec.Lease}
		}
		return ev, nil
	}
	kv := &mvccpb.KeyValue{Key: key, Value: value, ModRevision: rev, Version: 1, Lease: rec.Lease}
	ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
	if rec.Op == eventlog.OpCreate {
		kv.CreateRevision = rev
		return ev, nil
	}
	if prevKV {
		// An update written elsewhere than the front may not carry the
		// state it replaced; its current value stands in for it.
		prev := rec.Prev
		if prev == nil {
			prev = rec.Event
		}
		pv, err := s.encodeShared(st, prevMemo, prev)
		if err != nil {
			return nil, err
		}
		ev.PrevKv = &mvccpb.KeyValue{Key: key, Value: pv, Version: 1}
	}
	return ev, nil
}

// encodeShared encodes ev once per shared state.
func (s *Server) encodeShared(st watchtail.State, m *watchtail.Memo[[]byte], ev *corev1.Event) ([]byte, error) {
	var encErr error
	b := m.Get(st, func(bool) []byte {
		v, err := s.codec.encode(ev)
		encErr = err
		return v
	})
	if b == nil && encErr == nil {
		// Another watch's encoding of this state failed.
		return nil, errors.New("a stored state could not be encoded")
	}
	return b, encErr
}
