package etcdfront

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// commitWait is how long a read waits for the writer when the log holds
// more unindexed states than a request should read (ClickHouse slow or
// down), before it answers Unavailable, never stale.
const commitWait = 3 * time.Second

// Range implements pb.KVServer.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	return s.rangeIn(ctx, sc, r)
}

// rangeIn answers a Range for scope sc.
func (s *Server) rangeIn(ctx context.Context, sc scope.Scope, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if r.Revision < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: revision %d is negative", r.Revision)
	}
	if r.Limit < 0 {
		// etcd reads a negative limit as none; kube-apiserver passes a
		// client's limit=-1 on.
		r.Limit = 0
	}
	if r.SortOrder != pb.RangeRequest_NONE || r.SortTarget != pb.RangeRequest_KEY {
		return nil, errUnsupported("sorted ranges: ranges come in key order")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return nil, errUnsupported("revision filters on Range")
	}
	if len(r.RangeEnd) == 0 && string(r.Key) == compactRevKey {
		return s.compactGet(ctx, sc)
	}
	at, err := s.readRevision(ctx, sc, r.Revision)
	if err != nil {
		return nil, err
	}
	resp := &pb.RangeResponse{Header: s.header(at)}
	sp, ok := s.keys.spanOf(r.Key, r.RangeEnd)
	if !ok {
		// No event key can be in it (the health key, a range before or
		// after the prefix): etcd answers an empty range.
		if len(r.RangeEnd) == 0 && !bytes.Equal(r.Key, []byte(s.keys.health)) && !bytes.HasPrefix(r.Key, []byte(s.keys.prefix)) &&
			!bytes.Equal(r.Key, []byte(compactRevKey)) {
			s.d.Metrics.outside.Inc()
		}
		return resp, nil
	}
	var recs []*eventlog.Record
	if sp.single && r.Revision == 0 {
		rec, _, err := s.current(ctx, sc, sp.namespace, sp.from[len(sp.namespace)+1:])
		if err != nil {
			return nil, err
		}
		if rec != nil {
			recs = []*eventlog.Record{rec}
			if rec.Seq > at {
				resp.Header.Revision = int64(rec.Seq)
			}
		}
		resp.Count = int64(len(recs))
	} else {
		var more bool
		if recs, resp.Count, more, err = s.readSpan(ctx, sc, sp, at, r.Limit, r.CountOnly); err != nil {
			return nil, err
		}
		resp.More = more
	}
	if r.CountOnly {
		return resp, nil
	}
	for _, rec := range recs {
		kv, err := s.kvOf(rec, r.KeysOnly)
		if err != nil {
			return nil, err
		}
		resp.Kvs = append(resp.Kvs, kv)
	}
	return resp, nil
}

// readRevision resolves a read's revision: 0 is the head; a later one than
// the log has is a future revision; one compacted away is refused.
func (s *Server) readRevision(ctx context.Context, sc scope.Scope, rev int64) (uint64, error) {
	head, err := s.head(ctx)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return head, nil
	}
	if uint64(rev) > head {
		return 0, rpctypes.ErrGRPCFutureRev
	}
	if rev < s.compactedRev(sc) {
		return 0, rpctypes.ErrGRPCCompacted
	}
	return uint64(rev), nil
}

// current returns the newest live state of one event and the sequence a
// write must expect on its subject (0 when the log no longer holds any
// state of it), or nil when the event does not exist.
func (s *Server) current(ctx context.Context, sc scope.Scope, namespace, name string) (*eventlog.Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	rec, err := s.d.Log.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: sc, Namespace: namespace, Name: name}))
	if err != nil {
		return nil, 0, unavailable("read the log", err)
	}
	if rec != nil {
		if rec.Op.Gone() {
			return nil, rec.Seq, nil
		}
		return rec, rec.Seq, nil
	}
	// No state in the log. When the log still holds everything written in
	// the window, the event does not exist (or is older than the window,
	// where Range does not see it either): no index read, which is most of
	// what a create would cost. Otherwise its states may have been trimmed
	// after commit, and the index has it, if anyone does.
	covers, err := s.logCovers(ctx)
	if err != nil {
		return nil, 0, err
	}
	if covers {
		return nil, 0, nil
	}
	rel := namespace + "/" + name
	recs, err := s.d.Index.RangeKeys(ctx, chstore.KeyRange{From: rel, To: rel + "\x00", Limit: 1,
		LatestFilter: chstore.LatestFilter{Scope: &sc, Namespace: &namespace, Since: time.Now().Add(-s.cfg.Window)}})
	if err != nil {
		return nil, 0, unavailable("read the index", err)
	}
	if len(recs) == 0 {
		return nil, 0, nil
	}
	return recs[0], 0, nil
}

// coverCheck is how long logCovers trusts its last answer: the log's first
// state moves with the writer's trims, minutes apart.
const coverCheck = 5 * time.Second

// logCovers reports whether the log holds every state written within the
// window: it never trimmed anything, or its oldest state is older than the
// window.
func (s *Server) logCovers(ctx context.Context) (bool, error) {
	s.coverMu.Lock()
	defer s.coverMu.Unlock()
	if !s.coveredAt.IsZero() && time.Since(s.coveredAt) < coverCheck {
		return s.covered, nil
	}
	first, stored, err := s.d.Log.Oldest(ctx)
	if err != nil {
		return false, unavailable("read the log's bounds", err)
	}
	s.covered = first <= 1 || stored.Before(time.Now().Add(-s.cfg.Window))
	s.coveredAt = time.Now()
	return s.covered, nil
}

// readSpan reads the live events of sp as of revision at, in key order:
// the index up to the watermark (base), and, replacing what it says of
// their events, the log's states after it. It returns up to limit events
// (all when 0), the count of events in the span, and whether more follow.
func (s *Server) readSpan(ctx context.Context, sc scope.Scope, sp span, at uint64, limit int64, countOnly bool) (
	recs []*eventlog.Record, count int64, more bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	base := min(at, s.d.Watermark.Load())
	var nsp *string
	if sp.namespace != "" {
		nsp = &sp.namespace
	}
	since := time.Now().Add(-s.cfg.Window)
	// The log's states after base: the newest of each event in the span.
	overlay := map[string]*eventlog.Record{}
	var existedAtBase int64
	if base < at {
		states, err := s.d.Log.Range(ctx, eventlog.FilterSubject(&sc, nsp), base, at)
		if errors.Is(err, eventlog.ErrRangeTooLong) {
			wctx, wcancel := context.WithTimeout(ctx, commitWait)
			err = s.d.Watermark.WaitFor(wctx, at)
			wcancel()
			if err != nil {
				return nil, 0, false, status.Errorf(codes.Unavailable,
					"etcdserver: request timed out: the index is %d states behind the log", at-min(at, s.d.Watermark.Load()))
			}
			base, states = at, nil
		} else if err != nil {
			return nil, 0, false, unavailable("read the log", err)
		}
		for _, st := range states {
			rel := relKey(st)
			if !sp.contains(rel) {
				continue
			}
			if _, seen := overlay[rel]; !seen && st.Op != eventlog.OpCreate {
				existedAtBase++ // the index counts it, as of base
			}
			overlay[rel] = st
		}
	}
	var live []*eventlog.Record
	for _, st := range overlay {
		if !st.Op.Gone() && !chstore.LastObserved(st.Event, time.Now()).Before(since.Truncate(time.Second)) {
			live = append(live, st)
		}
	}
	logLive := len(live)
	q := chstore.KeyRange{LatestFilter: chstore.LatestFilter{Scope: &sc, Namespace: nsp, Since: since, AtSeq: base}, From: sp.from, To: sp.to}
	// counted is the span's size: the index's events less those the log
	// replaces, plus the log's live ones.
	counted := func() (int64, error) {
		var n uint64
		if base > 0 {
			if n, err = s.d.Index.CountKeys(ctx, q); err != nil {
				return 0, unavailable("count in the index", err)
			}
		}
		return max(int64(n)-existedAtBase, 0) + int64(logLive), nil
	}
	if countOnly {
		count, err = counted()
		return nil, count, false, err
	}
	var fromIndex []*eventlog.Record
	if base > 0 {
		if limit > 0 {
			// One more than the page, past the events the log replaces,
			// tells whether another page follows.
			q.Limit = int(limit) + len(overlay) + 1
		}
		if fromIndex, err = s.d.Index.RangeKeys(ctx, q); err != nil {
			return nil, 0, false, unavailable("read the index", err)
		}
	}
	for _, rec := range fromIndex {
		if _, replaced := overlay[relKey(rec)]; !replaced {
			live = append(live, rec)
		}
	}
	sort.Slice(live, func(i, j int) bool { return relKey(live[i]) < relKey(live[j]) })
	if limit == 0 || int64(len(live)) <= limit {
		// Everything in the span from the page's start is here (the index
		// was asked for more than the page can hold): the count is exact
		// without counting.
		return live, int64(len(live)), false, nil
	}
	// More follow for certain: kube-apiserver takes count > returned as
	// "more", must find them on the next page, and shows count less the
	// page as remainingItemCount.
	live = live[:limit]
	if count, err = counted(); err != nil {
		return nil, 0, false, err
	}
	return live, max(count, limit+1), true, nil
}

// relKey is a record's key below the prefix.
func relKey(r *eventlog.Record) string { return r.Key.Namespace + "/" + r.Key.Name }

// kvOf returns the etcd key-value of a live state.
func (s *Server) kvOf(rec *eventlog.Record, keysOnly bool) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{Key: s.keys.keyOf(rec), ModRevision: int64(rec.Seq), Version: 1, Lease: rec.Lease}
	if rec.Op == eventlog.OpCreate {
		kv.CreateRevision = kv.ModRevision
	}
	if keysOnly {
		return kv, nil
	}
	v, err := s.codec.encode(rec.Event)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "etcdserver: %v", err)
	}
	kv.Value = v
	return kv, nil
}
