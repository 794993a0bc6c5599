package etcdfront

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// emptyIndex is an index with nothing committed: with a watermark of 0 every
// read comes from the log (the index's own queries are tested in
// internal/store/clickhouse and end to end in test/etcdfront).
type emptyIndex struct{}

func (emptyIndex) RangeKeys(context.Context, chstore.KeyRange) ([]*eventlog.Record, error) {
	return nil, nil
}
func (emptyIndex) CountKeys(context.Context, chstore.KeyRange) (uint64, error) { return 0, nil }

type zeroWatermark struct{}

func (zeroWatermark) Load() uint64                                { return 0 }
func (zeroWatermark) WaitFor(ctx context.Context, _ uint64) error { <-ctx.Done(); return ctx.Err() }

var testScope = scope.Scope{Type: scope.TypeProject, Name: "cluster"}

// fixture is a front on an embedded JetStream, served on loopback, with an
// etcd client of its own.
type fixture struct {
	s    *Server
	addr string
	// cli is a client without TLS; nil when the front serves TLS.
	cli *clientv3.Client
	log event.LogReaderPublisher
}

func newFixture(t testing.TB, tweak func(*Config)) *fixture {
	t.Helper()
	ns := eventtest.Stream(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, err := eventlog.NewReader(ctx, ns.JS)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	state, err := OpenState(ctx, ns.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	lg := event.LogReaderPublisher{Reader: r, Publisher: eventlog.NewPublisher(ns.JS), Watches: watchtail.NewSource(ctx, r, quiet)}
	cfg := DefaultConfig()
	cfg.Scope = testScope
	cfg.ReapInterval = 50 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg, Deps{Log: lg, Index: emptyIndex{}, Watermark: zeroWatermark{}, State: state, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	f := &fixture{s: s, addr: l.Addr().String(), log: lg}
	if cfg.TLS == nil {
		if f.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{f.addr}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if f.cli != nil {
			_ = f.cli.Close()
		}
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		<-state.Done()
	})
	return f
}

// value is the value kube-apiserver would store for an event.
func (f *fixture) value(t testing.TB, ns, name, reason string) string {
	t.Helper()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.Now()},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p"}, Reason: reason, Type: "Normal", Count: 1}
	b, err := f.s.codec.encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func key(ns, name string) string { return "/registry/events/" + ns + "/" + name }
