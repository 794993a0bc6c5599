package etcdfront

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// seedTxns are kube-apiserver's transaction shapes, for the fuzzers to
// start from.
func seedTxns(fx *fixture, t testing.TB) []*pb.TxnRequest {
	k := []byte(key("a", "x"))
	v := []byte(fx.value(t, "a", "x", "R"))
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: v}}}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: k}}}
	del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: k}}}
	mod := func(r int64) []*pb.Compare {
		return []*pb.Compare{{Key: k, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: r}}}
	}
	ck := []byte(compactRevKey)
	return []*pb.TxnRequest{
		{Compare: mod(0), Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{get}},
		{Compare: mod(1), Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{get}},
		{Compare: mod(1), Success: []*pb.RequestOp{del}},
		{Compare: []*pb.Compare{{Key: ck, Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 0}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: ck, Value: []byte("3")}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: ck}}}}},
	}
}

// checkAnswer fails t when a handler panicked (the interceptor is not in
// this path, so a panic fails the fuzzer itself) or answered with an error
// that is not a gRPC status: etcd clients read codes and messages.
func checkAnswer(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if _, ok := status.FromError(err); !ok {
		t.Fatalf("error without a gRPC status: %v", err)
	}
}

// FuzzTxn sends arbitrary transactions: each is answered or refused with a
// status, never a panic or a hang, and the key space still reads after it.
func FuzzTxn(f *testing.F) {
	fx := newFixture(f, nil)
	for _, r := range seedTxns(fx, f) {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pb.TxnRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := fx.s.Txn(ctx, &r)
		checkAnswer(t, err)
		if _, err := fx.s.Range(ctx, &pb.RangeRequest{Key: []byte("/registry/events/"), RangeEnd: []byte("/registry/events0")}); err != nil {
			t.Fatalf("the key space does not read after %v: %v", &r, err)
		}
	})
}

// FuzzRange sends arbitrary ranges.
func FuzzRange(f *testing.F) {
	fx := newFixture(f, nil)
	for _, r := range []*pb.RangeRequest{
		{Key: []byte(key("a", "x"))},
		{Key: []byte("/registry/events/"), RangeEnd: []byte("/registry/events0"), Limit: 2},
		{Key: []byte("/registry/events/a/"), RangeEnd: []byte("/registry/events/a0"), CountOnly: true},
		{Key: []byte("/registry/events/a/x\x00"), RangeEnd: []byte{0}, KeysOnly: true, Revision: 1},
		{Key: []byte(compactRevKey)},
		{Key: []byte("/registry/health")},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pb.RangeRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := fx.s.Range(ctx, &r)
		checkAnswer(t, err)
		if err == nil && r.Limit > 0 && int64(len(resp.Kvs)) > r.Limit {
			t.Fatalf("%d keys for limit %d", len(resp.Kvs), r.Limit)
		}
	})
}

// FuzzWatch sends an arbitrary watch request on a stream of its own: the
// stream answers (created, canceled, or a progress) or stays open, and
// closes when the client goes; the server never panics.
func FuzzWatch(f *testing.F) {
	fx := newFixture(f, nil)
	for _, r := range []*pb.WatchRequest{
		{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("/registry/events/"),
			RangeEnd: []byte("/registry/events0"), PrevKv: true, ProgressNotify: true, StartRevision: 1}}},
		{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte(compactRevKey)}}},
		{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}},
		{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 3}}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pb.WatchRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := pb.NewWatchClient(fx.cli.ActiveConnection()).Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&r); err != nil {
			t.Fatal(err)
		}
		if r.GetCreateRequest() != nil {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("no answer to %v: %v", &r, err)
			}
			if !resp.Created {
				t.Fatalf("first answer to a create is not Created: %v", resp)
			}
		}
		_ = stream.CloseSend()
	})
}
