package etcdfront

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// txnShapes is what the front accepts, for the error that refuses the rest.
const txnShapes = "kube-apiserver's transactions: if mod_revision(key) == r then put(key) or delete(key) [else get(key)], " +
	"and its compaction's if version(compact_rev_key) == v then put else get"

// Txn implements pb.KVServer for kube-apiserver's transactions: create
// (mod_revision == 0 → put with lease), guaranteed update (mod_revision ==
// r → put), delete (mod_revision == r → delete), each with an optional get
// of the key on failure, and its compactor's.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if len(r.Compare) != 1 || len(r.Success) != 1 || len(r.Failure) > 1 {
		return nil, txnRefused("it has %d comparisons, %d success and %d failure operations; want 1, 1 and at most 1",
			len(r.Compare), len(r.Success), len(r.Failure))
	}
	cmp := r.Compare[0]
	if len(cmp.RangeEnd) != 0 || cmp.Result != pb.Compare_EQUAL {
		return nil, txnRefused("its comparison is not an equality on one key")
	}
	var getOnFailure bool
	if len(r.Failure) == 1 {
		get := r.Failure[0].GetRequestRange()
		if get == nil || string(get.Key) != string(cmp.Key) || len(get.RangeEnd) != 0 || get.Revision != 0 || get.CountOnly || get.KeysOnly {
			return nil, txnRefused("its failure branch is not a get of the compared key")
		}
		getOnFailure = true
	}
	if string(cmp.Key) == compactRevKey {
		return s.compactTxn(ctx, sc, cmp, r.Success[0], getOnFailure)
	}
	if cmp.Target != pb.Compare_MOD {
		return nil, txnRefused("it compares %s, not mod_revision", cmp.Target)
	}
	ns, name, err := s.keys.event(cmp.Key)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: %v", err)
	}
	want := cmp.GetModRevision()
	switch op := r.Success[0].Request.(type) {
	case *pb.RequestOp_RequestPut:
		put := op.RequestPut
		if string(put.Key) != string(cmp.Key) || put.PrevKv || put.IgnoreValue || put.IgnoreLease {
			return nil, txnRefused("its put is not a plain put of the compared key")
		}
		return s.put(ctx, sc, ns, name, want, put, getOnFailure)
	case *pb.RequestOp_RequestDeleteRange:
		del := op.RequestDeleteRange
		if string(del.Key) != string(cmp.Key) || len(del.RangeEnd) != 0 || del.PrevKv {
			return nil, txnRefused("its delete is not a delete of the compared key")
		}
		if want == 0 {
			return nil, txnRefused("it deletes a key it requires to be absent")
		}
		return s.del(ctx, sc, ns, name, want, getOnFailure)
	}
	return nil, txnRefused("its success operation is neither a put nor a delete")
}

func txnRefused(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "etcdserver: transaction refused: %s; eventpipe accepts only %s",
		fmt.Sprintf(format, args...), txnShapes)
}

// put is the create (want 0) or guaranteed update of one event.
func (s *Server) put(ctx context.Context, sc scope.Scope, ns, name string, want int64, put *pb.PutRequest, getOnFailure bool) (*pb.TxnResponse, error) {
	if len(put.Value) > s.cfg.MaxRequestBytes {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	ev, err := s.codec.decode(put.Value, ns, name)
	if err != nil {
		s.d.Metrics.badValues.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: value of %q refused: %v", put.Key, err)
	}
	if put.Lease != 0 && !s.leaseAlive(sc, put.Lease) {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	for {
		cur, expect, err := s.current(ctx, sc, ns, name)
		if err != nil {
			return nil, err
		}
		if curRev(cur) != want {
			return s.failed(ctx, cur, getOnFailure)
		}
		rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ns, Name: name}, Op: eventlog.OpCreate, Event: ev, Lease: put.Lease}
		if cur != nil {
			rec.Op, rec.Prev = eventlog.OpUpdate, cur.Event
		}
		seq, err := s.publish(ctx, sc, rec, expect)
		if errors.Is(err, eventlog.ErrConflict) {
			continue // another write got in: compare again
		}
		if err != nil {
			return nil, err
		}
		s.d.Metrics.writes.WithLabelValues(rec.Op.String()).Inc()
		return &pb.TxnResponse{Header: s.header(seq), Succeeded: true,
			Responses: []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: s.header(seq)}}}}}, nil
	}
}

// del is the delete of one event at revision want.
func (s *Server) del(ctx context.Context, sc scope.Scope, ns, name string, want int64, getOnFailure bool) (*pb.TxnResponse, error) {
	for {
		cur, expect, err := s.current(ctx, sc, ns, name)
		if err != nil {
			return nil, err
		}
		if cur == nil || curRev(cur) != want {
			return s.failed(ctx, cur, getOnFailure)
		}
		rec := &eventlog.Record{Key: cur.Key, Op: eventlog.OpDelete, Event: stateOf(cur.Event)}
		seq, err := s.publish(ctx, sc, rec, expect)
		if errors.Is(err, eventlog.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.d.Metrics.writes.WithLabelValues(rec.Op.String()).Inc()
		return &pb.TxnResponse{Header: s.header(seq), Succeeded: true, Responses: []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponseDeleteRange{
			ResponseDeleteRange: &pb.DeleteRangeResponse{Header: s.header(seq), Deleted: 1}}}}}, nil
	}
}

// stateOf returns ev without its resourceVersion, as states are stored.
func stateOf(ev *corev1.Event) *corev1.Event {
	out := *ev
	out.ResourceVersion = ""
	return &out
}

func curRev(cur *eventlog.Record) int64 {
	if cur == nil {
		return 0
	}
	return int64(cur.Seq)
}

// failed answers a transaction whose comparison failed, at the head, with
// the key's current value when asked for.
func (s *Server) failed(ctx context.Context, cur *eventlog.Record, getOnFailure bool) (*pb.TxnResponse, error) {
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		rev = max(rev, cur.Seq)
	}
	resp := &pb.TxnResponse{Header: s.header(rev)}
	if getOnFailure {
		get := &pb.RangeResponse{Header: s.header(rev)}
		if cur != nil {
			kv, err := s.kvOf(cur, false)
			if err != nil {
				return nil, err
			}
			get.Kvs, get.Count = append(get.Kvs, kv), 1
		}
		resp.Responses = []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponseRange{ResponseRange: get}}}
	}
	return resp, nil
}

// publish stores one state, expecting the subject's newest sequence to be
// expect, after the tiers admit it (deletes are never refused).
func (s *Server) publish(ctx context.Context, sc scope.Scope, rec *eventlog.Record, expect uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	done := func(uint64, error) {}
	if s.d.Admission != nil && !rec.Op.Gone() {
		var err error
		if done, err = s.d.Admission.Admit(ctx, sc, rec); err != nil {
			s.d.Metrics.refused.Inc()
			// etcd's answer when it will not take more: kube-apiserver
			// returns it to its client as a 500 with this text.
			return 0, status.Errorf(codes.ResourceExhausted, "etcdserver: too many requests: %v", err)
		}
	}
	seq, err := s.d.Log.Publish(ctx, rec, eventlog.PublishOptions{ExpectLastSeq: &expect})
	done(seq, err)
	if err != nil && !errors.Is(err, eventlog.ErrConflict) {
		return 0, unavailable("write to the log", err)
	}
	return seq, err
}
