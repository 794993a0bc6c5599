package etcdfront

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// kube is the client kube-apiserver uses, on the fixture's connection.
func (f *fixture) kube() kubernetes.Interface {
	return &kubernetes.Client{Client: f.cli}
}

// TestKubeAPIServerCalls makes the calls kube-apiserver's etcd3 storage
// makes (go.etcd.io/etcd/client/v3/kubernetes) and checks etcd's answers.
func TestKubeAPIServerCalls(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	k := f.kube()
	lease, err := f.cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	v1 := f.value(t, "a", "one", "Started")
	put, err := k.OptimisticPut(ctx, key("a", "one"), []byte(v1), 0, kubernetes.PutOptions{LeaseID: lease.ID, GetOnFailure: true})
	if err != nil || !put.Succeeded {
		t.Fatalf("create: %+v %v", put, err)
	}
	created := put.Revision
	again, err := k.OptimisticPut(ctx, key("a", "one"), []byte(v1), 0, kubernetes.PutOptions{GetOnFailure: true})
	if err != nil || again.Succeeded || again.KV == nil || again.KV.ModRevision != created {
		t.Fatalf("second create: %+v %v; want failure with the current key at %d", again, err, created)
	}
	if string(again.KV.Value) != v1 {
		t.Fatal("the value read back is not the bytes written")
	}
	got, err := k.Get(ctx, key("a", "one"), kubernetes.GetOptions{})
	if err != nil || got.KV == nil || got.KV.ModRevision != created || got.KV.CreateRevision != created || got.KV.Lease != int64(lease.ID) {
		t.Fatalf("get: %+v %v", got, err)
	}
	v2 := f.value(t, "a", "one", "Updated")
	upd, err := k.OptimisticPut(ctx, key("a", "one"), []byte(v2), created, kubernetes.PutOptions{GetOnFailure: true})
	if err != nil || !upd.Succeeded || upd.Revision <= created {
		t.Fatalf("update: %+v %v", upd, err)
	}
	stale, err := k.OptimisticPut(ctx, key("a", "one"), []byte(v1), created, kubernetes.PutOptions{GetOnFailure: true})
	if err != nil || stale.Succeeded || stale.KV.ModRevision != upd.Revision || string(stale.KV.Value) != v2 {
		t.Fatalf("update at a stale revision: %+v %v; want failure with the current value", stale, err)
	}
	for _, k2 := range []struct{ ns, name string }{{"a-b", "x"}, {"a", "two"}, {"b", "y"}} {
		if r, err := k.OptimisticPut(ctx, key(k2.ns, k2.name), []byte(f.value(t, k2.ns, k2.name, "R")), 0, kubernetes.PutOptions{}); err != nil || !r.Succeeded {
			t.Fatalf("create %v: %v", k2, err)
		}
	}
	// Pages of two over every namespace, continued as kube-apiserver does.
	var keys []string
	list, err := k.List(ctx, "/registry/events/", kubernetes.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	rev := list.Revision
	for {
		for _, kv := range list.Kvs {
			keys = append(keys, string(kv.Key))
		}
		if int64(len(list.Kvs)) >= list.Count {
			break
		}
		next := string(list.Kvs[len(list.Kvs)-1].Key) + "\x00"
		if list, err = k.List(ctx, "/registry/events/", kubernetes.ListOptions{Limit: 2, Revision: rev, Continue: next}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{key("a-b", "x"), key("a", "one"), key("a", "two"), key("b", "y")}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("paged list:\n%v\nwant etcd's byte order:\n%v", keys, want)
	}
	if n, err := k.Count(ctx, "/registry/events/a/", kubernetes.CountOptions{}); err != nil || n != 2 {
		t.Fatalf("count of namespace a: %d %v, want 2", n, err)
	}
	del, err := k.OptimisticDelete(ctx, key("a", "two"), 1, kubernetes.DeleteOptions{GetOnFailure: true})
	if err != nil || del.Succeeded || del.KV == nil {
		t.Fatalf("delete at a wrong revision: %+v %v", del, err)
	}
	del, err = k.OptimisticDelete(ctx, key("a", "two"), del.KV.ModRevision, kubernetes.DeleteOptions{GetOnFailure: true})
	if err != nil || !del.Succeeded {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if got, err := k.Get(ctx, key("a", "two"), kubernetes.GetOptions{}); err != nil || got.KV != nil {
		t.Fatalf("get after delete: %+v %v", got, err)
	}
	// The log tells a client's delete from an expiry.
	rec, err := f.log.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: testScope, Namespace: "a", Name: "two"}))
	if err != nil || rec.Op != eventlog.OpDelete {
		t.Fatalf("the log's newest state of a/two: %+v %v", rec, err)
	}
	// Reads at an old revision see the past; a future one is refused.
	old, err := f.cli.Get(ctx, key("a", "one"), clientv3.WithRev(created))
	if err != nil || len(old.Kvs) != 1 || string(old.Kvs[0].Value) != v1 {
		t.Fatalf("get at revision %d: %+v %v", created, old, err)
	}
	if _, err := f.cli.Get(ctx, key("a", "one"), clientv3.WithRev(1<<40)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("get at a future revision: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	// kube-apiserver's readiness check and its current revision.
	if _, err := f.cli.Get(ctx, "/registry/health"); err != nil {
		t.Fatalf("health key: %v", err)
	}
	st, err := f.cli.Status(ctx, f.cli.Endpoints()[0])
	if err != nil || st.Version < "3.5.13" || st.Header.Revision < upd.Revision {
		t.Fatalf("status: %+v %v", st, err)
	}
}

// TestRefusals checks that what kube-apiserver never sends is refused with
// etcd's codes and a message that says what is allowed.
func TestRefusals(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxRequestBytes = 4096 })
	ctx := context.Background()
	k := f.kube()
	code := func(err error) codes.Code { return status.Code(err) }
	if _, err := f.cli.Put(ctx, key("a", "x"), "v"); code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "transactions") {
		t.Errorf("plain put: %v", err)
	}
	if _, err := f.cli.Delete(ctx, key("a", "x")); code(err) != codes.Unimplemented {
		t.Errorf("plain delete: %v", err)
	}
	cases := map[string]struct {
		key, value string
		want       string
	}{
		"outside the prefix":  {"/registry/pods/a/x", f.value(t, "a", "x", "R"), "outside the Events key space"},
		"not an event's key":  {"/registry/events/a", f.value(t, "a", "x", "R"), "not an event's key"},
		"garbage":             {key("a", "x"), "\x00garbage", "not a Kubernetes object"},
		"encrypted":           {key("a", "x"), "k8s:enc:aescbc:v1:key1:xxxx", "encrypted at rest"},
		"name mismatch":       {key("a", "y"), f.value(t, "a", "x", "R"), "its key names a/y"},
		"too large":           {key("a", "x"), strings.Repeat("x", 5000), "request is too large"},
		"a pod, not an event": {key("a", "x"), "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}}", "not a /v1, Kind=Event"},
	}
	for name, c := range cases {
		_, err := k.OptimisticPut(ctx, c.key, []byte(c.value), 0, kubernetes.PutOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", name, err, c.want)
		}
	}
	_, err := k.OptimisticPut(ctx, key("a", "x"), []byte(f.value(t, "a", "x", "R")), 0, kubernetes.PutOptions{LeaseID: 12345})
	if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("put with an unknown lease: %v", err)
	}
	txns := map[string]*pb.TxnRequest{
		"two comparisons": {Compare: []*pb.Compare{{Key: []byte(key("a", "x"))}, {Key: []byte(key("a", "y"))}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}}},
		"a range in success": {Compare: []*pb.Compare{{Key: []byte(key("a", "x")), Target: pb.Compare_MOD}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}}},
		"compare on value": {Compare: []*pb.Compare{{Key: []byte(key("a", "x")), Target: pb.Compare_VALUE}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key("a", "x"))}}}}},
		"put of another key": {Compare: []*pb.Compare{{Key: []byte(key("a", "x")), Target: pb.Compare_MOD}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key("a", "y"))}}}}},
	}
	for name, r := range txns {
		_, err := pb.NewKVClient(f.cli.ActiveConnection()).Txn(ctx, r)
		if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "eventpipe accepts only kube-apiserver's transactions") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWatch follows kube-apiserver's watch: from a revision, with the
// previous values and progress requests.
func TestWatch(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := f.kube()
	put, err := k.OptimisticPut(ctx, key("a", "one"), []byte(f.value(t, "a", "one", "R")), 0, kubernetes.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := f.cli.Watch(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithPrevKV(),
		clientv3.WithRev(put.Revision), clientv3.WithProgressNotify())
	upd, err := k.OptimisticPut(ctx, key("a", "one"), []byte(f.value(t, "a", "one", "R2")), put.Revision, kubernetes.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.OptimisticDelete(ctx, key("a", "one"), upd.Revision, kubernetes.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case r := <-w:
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			for _, e := range r.Events {
				got = append(got, e.Type.String()+" create="+strconv.FormatBool(e.IsCreate())+" prev="+strconv.FormatBool(e.PrevKv != nil))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: got %v", got)
		}
	}
	want := "PUT create=true prev=false,PUT create=false prev=true,DELETE create=false prev=true"
	if strings.Join(got, ",") != want {
		t.Fatalf("watch events %v, want %s", got, want)
	}
	if err := f.cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w:
		if !r.IsProgressNotify() || r.Header.Revision < upd.Revision+1 {
			t.Fatalf("progress: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to a progress request")
	}
	// A compacted revision ends a watch with ErrCompacted.
	if _, err := f.cli.Compact(ctx, upd.Revision); err != nil {
		t.Fatal(err)
	}
	old := f.cli.Watch(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithRev(put.Revision))
	select {
	case r := <-old:
		if !errors.Is(r.Err(), rpctypes.ErrCompacted) || r.CompactRevision != upd.Revision {
			t.Fatalf("watch from a compacted revision: %v (compact revision %d)", r.Err(), r.CompactRevision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a watch from a compacted revision was not ended")
	}
	if _, err := f.cli.Get(ctx, key("a", "one"), clientv3.WithRev(put.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get at a compacted revision: %v", err)
	}
}

// TestLeases: a lease's events end when it runs out (a DELETE on the watch,
// an OpExpire in the log), a keep-alive delays that, a revoke ends them now.
func TestLeases(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := f.kube()
	granted := time.Now()
	short, err := f.cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	long, err := f.cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	w := f.cli.Watch(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	for i, l := range []clientv3.LeaseID{short.ID, long.ID} {
		name := "e" + strconv.Itoa(i)
		if _, err := k.OptimisticPut(ctx, key("a", name), []byte(f.value(t, "a", name, "R")), 0, kubernetes.PutOptions{LeaseID: l}); err != nil {
			t.Fatal(err)
		}
	}
	deleted := func() string {
		for {
			select {
			case r := <-w:
				for _, e := range r.Events {
					if e.Type == mvccpb.DELETE {
						return string(e.Kv.Key)
					}
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no DELETE on the watch")
			}
		}
	}
	if k := deleted(); k != key("a", "e0") || time.Since(granted) < 2*time.Second {
		t.Fatalf("deleted %s after %s; want a/e0 after its 2s lease", k, time.Since(granted))
	}
	rec, err := f.log.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: testScope, Namespace: "a", Name: "e0"}))
	if err != nil || rec.Op != eventlog.OpExpire || rec.Event.Reason != "R" {
		t.Fatalf("the log's newest state of a/e0: %+v %v; want an expire holding the last state", rec, err)
	}
	if ttl, err := f.cli.TimeToLive(ctx, long.ID, clientv3.WithAttachedKeys()); err != nil || ttl.GrantedTTL != 3600 || len(ttl.Keys) != 1 {
		t.Fatalf("time to live: %+v %v", ttl, err)
	}
	if _, err := f.cli.KeepAliveOnce(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli.Revoke(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	if k := deleted(); k != key("a", "e1") {
		t.Fatalf("deleted %s; want a/e1, whose lease was revoked", k)
	}
	if _, err := f.cli.KeepAliveOnce(ctx, long.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of a revoked lease: %v", err)
	}
}

// TestCompactor plays kube-apiserver's compactor: the version-checked put
// of compact_rev_key, Compact, and a watch of the key.
func TestCompactor(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cas := func(version int64, rev string) *clientv3.TxnResponse {
		t.Helper()
		r, err := f.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(compactRevKey), "=", version)).
			Then(clientv3.OpPut(compactRevKey, rev)).Else(clientv3.OpGet(compactRevKey)).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := cas(0, "0"); !r.Succeeded {
		t.Fatal("first compaction time was refused")
	}
	get, err := f.cli.Get(ctx, compactRevKey)
	if err != nil || len(get.Kvs) != 1 || get.Kvs[0].Version != 1 {
		t.Fatalf("get %s: %+v %v", compactRevKey, get, err)
	}
	// From the revision after the read, as etcd clients watch.
	w := f.cli.Watch(ctx, compactRevKey, clientv3.WithRev(get.Header.Revision+1))
	if r := cas(0, "5"); r.Succeeded || string(r.Responses[0].GetResponseRange().Kvs[0].Value) != "0" {
		t.Fatalf("a stale compaction time succeeded: %+v", r)
	}
	if r := cas(1, "7"); !r.Succeeded {
		t.Fatal("the next compaction time was refused")
	}
	select {
	case r := <-w:
		if len(r.Events) == 0 || string(r.Events[len(r.Events)-1].Kv.Value) != "7" {
			t.Fatalf("watch of %s: %+v", compactRevKey, r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch of compact_rev_key saw no change")
	}
}

// TestFreshLogStartsAtRevisionOne: on a log that never held a state, a
// list answers revision 1, not 0 (kube-apiserver refuses 0: "illegal
// resource version from storage: 0"), and a watch from the list's next
// revision sees the first write.
func TestFreshLogStartsAtRevisionOne(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	list, err := f.cli.Get(ctx, "/registry/events/", clientv3.WithPrefix())
	if err != nil || list.Header.Revision != 1 || len(list.Kvs) != 0 {
		t.Fatalf("list of a fresh log: %+v %v; want revision 1, no keys", list, err)
	}
	w := f.cli.Watch(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithRev(list.Header.Revision+1))
	put, err := f.kube().OptimisticPut(ctx, key("a", "first"), []byte(f.value(t, "a", "first", "Started")), 0, kubernetes.PutOptions{})
	if err != nil || !put.Succeeded || put.Revision != 2 {
		t.Fatalf("first create: %+v %v; want revision 2", put, err)
	}
	select {
	case r := <-w:
		if len(r.Events) != 1 || r.Events[0].Kv.ModRevision != 2 {
			t.Fatalf("watch from revision 2: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch from the list's next revision missed the first write")
	}
}
