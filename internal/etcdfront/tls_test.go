package etcdfront

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// TestClientCertificatesChooseTheScope: several clusters share one front,
// each its own scope by its client certificate; a certificate no mapping
// names, or none, is refused.
func TestClientCertificatesChooseTheScope(t *testing.T) {
	ca, err := kubetest.NewCA("etcd-front-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer("eventpipe-etcd")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM())
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	f := newFixture(t, func(c *Config) {
		c.Scope = scope.Scope{}
		c.ClientScopes = map[string]scope.Scope{"cluster-alpha": alpha, "cluster-beta": beta}
		c.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	})
	client := func(cn string) *clientv3.Client {
		t.Helper()
		tc := &tls.Config{RootCAs: pool}
		if cn != "" {
			c, k, err := ca.IssueClient(cn)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + f.addr}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	ctx := context.Background()
	a, b := client("cluster-alpha"), client("cluster-beta")
	value := []byte(f.value(t, "ns", "x", "R"))
	for _, cli := range []*clientv3.Client{a, b} {
		r, err := (&kubernetes.Client{Client: cli}).OptimisticPut(ctx, key("ns", "x"), value, 0, kubernetes.PutOptions{})
		if err != nil || !r.Succeeded {
			t.Fatalf("create ns/x in its own scope: %+v %v", r, err)
		}
	}
	for sc, cli := range map[scope.Scope]*clientv3.Client{alpha: a, beta: b} {
		rec, err := f.log.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: sc, Namespace: "ns", Name: "x"}))
		if err != nil || rec == nil || rec.Op != eventlog.OpCreate {
			t.Fatalf("%s holds no create of ns/x: %+v %v", sc, rec, err)
		}
		got, err := cli.Get(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || got.Count != 1 {
			t.Fatalf("%s sees %d events, %v; want its own one", sc, got.Count, err)
		}
	}
	// A certificate no mapping names: refused, not given a scope.
	_, err = client("cluster-gamma").Get(ctx, key("ns", "x"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "cluster-gamma") {
		t.Fatalf("unmapped client certificate: %v; want PermissionDenied naming it", err)
	}
}
