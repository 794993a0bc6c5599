package etcdfront

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// compactedRev is the revision a scope's history starts after: reads and
// watches at or below it are refused with etcd's ErrCompacted.
func (s *Server) compactedRev(sc scope.Scope) int64 {
	c, _ := s.d.State.compactionOf(sc)
	return c.Compacted
}

// compactKV is a scope's compact_rev_key, nil before the first compaction.
func compactKV(c compaction) *mvccpb.KeyValue {
	if c.Version == 0 {
		return nil
	}
	return &mvccpb.KeyValue{Key: []byte(compactRevKey), Value: []byte(c.Value), Version: c.Version,
		ModRevision: c.ModRevision, CreateRevision: c.ModRevision}
}

// compactGet answers a Range of compact_rev_key.
func (s *Server) compactGet(ctx context.Context, sc scope.Scope) (*pb.RangeResponse, error) {
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	c, _ := s.d.State.compactionOf(sc)
	resp := &pb.RangeResponse{Header: s.header(rev)}
	if kv := compactKV(c); kv != nil {
		resp.Kvs, resp.Count = []*mvccpb.KeyValue{kv}, 1
	}
	return resp, nil
}

// compactTxn is kube-apiserver's compactor's transaction: if
// version(compact_rev_key) == v then put(compact_rev_key, rev) else get.
// The version is the compactors' shared clock; see
// k8s.io/apiserver/pkg/storage/etcd3/compact.go.
func (s *Server) compactTxn(ctx context.Context, sc scope.Scope, cmp *pb.Compare, op *pb.RequestOp, getOnFailure bool) (*pb.TxnResponse, error) {
	put := op.GetRequestPut()
	if cmp.Target != pb.Compare_VERSION || put == nil || string(put.Key) != compactRevKey || put.Lease != 0 || put.PrevKv {
		return nil, txnRefused("on %s it is not the compactor's version check and put", compactRevKey)
	}
	for {
		rev, err := s.head(ctx)
		if err != nil {
			return nil, err
		}
		cur, _ := s.d.State.compactionOf(sc)
		if cur.Version != cmp.GetVersion() {
			resp := &pb.TxnResponse{Header: s.header(rev)}
			if getOnFailure {
				get := &pb.RangeResponse{Header: s.header(rev)}
				if kv := compactKV(cur); kv != nil {
					get.Kvs, get.Count = []*mvccpb.KeyValue{kv}, 1
				}
				resp.Responses = []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponseRange{ResponseRange: get}}}
			}
			return resp, nil
		}
		next := cur
		next.Version, next.Value, next.ModRevision = cur.Version+1, string(put.Value), int64(rev)
		err = s.d.State.swapCompaction(ctx, sc, cur, next)
		if errors.Is(err, errCompactionChanged) {
			continue
		}
		if err != nil {
			return nil, unavailable("store the compaction", err)
		}
		return &pb.TxnResponse{Header: s.header(rev), Succeeded: true,
			Responses: []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: s.header(rev)}}}}}, nil
	}
}

// Compact implements pb.KVServer. The log and the index keep their own
// retention (the stream's max age, the tiers' days), so compaction only
// moves the revision below which the scope's reads and watches are
// refused, as etcd's are.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	for {
		rev, err := s.head(ctx)
		if err != nil {
			return nil, err
		}
		if r.Revision > int64(rev) {
			return nil, rpctypes.ErrGRPCFutureRev
		}
		cur, _ := s.d.State.compactionOf(sc)
		if r.Revision <= cur.Compacted {
			return nil, rpctypes.ErrGRPCCompacted
		}
		next := cur
		next.Compacted = r.Revision
		err = s.d.State.swapCompaction(ctx, sc, cur, next)
		if errors.Is(err, errCompactionChanged) {
			continue
		}
		if err != nil {
			return nil, unavailable("store the compaction", err)
		}
		return &pb.CompactionResponse{Header: s.header(rev)}, nil
	}
}

// watchCompactKey serves a watch of compact_rev_key from revision start:
// every later change of it, until ctx ends.
func (s *Server) watchCompactKey(ctx context.Context, sc scope.Scope, w *watcher, start int64) {
	c, changed := s.d.State.compactionOf(sc)
	sent := int64(-1) // the version last sent
	if kv := compactKV(c); kv != nil && kv.ModRevision < start {
		sent = kv.Version
	}
	for {
		if kv := compactKV(c); kv != nil && kv.Version > sent {
			if !w.send(&pb.WatchResponse{Header: s.header(uint64(kv.ModRevision)), WatchId: w.id,
				Events: []*mvccpb.Event{{Type: mvccpb.PUT, Kv: kv}}}) {
				return
			}
			sent = kv.Version
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		c, changed = s.d.State.compactionOf(sc)
	}
}
