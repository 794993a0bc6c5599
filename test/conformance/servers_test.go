package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// server is one side of the comparison: kube-apiserver (over etcd or
// through eventpipe's etcd front) or eventpipe.
type server struct {
	name   string
	base   string
	client *http.Client
	// prepareNamespace makes a case's namespace usable. kube-apiserver's
	// NamespaceLifecycle admission refuses writes into a namespace that does
	// not exist; eventpipe serves no namespaces and needs nothing.
	prepareNamespace func(ctx context.Context, ns string) error
}

// userAgent is sent by both sides' requests: the default field manager of
// a write is derived from it, so the two servers see the same one.
const userAgent = "eventpipe-conformance"

func newServer(tb testing.TB, name string, cfg *rest.Config) *server {
	tb.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		tb.Fatalf("%s: HTTP client: %v", name, err)
	}
	hc.Timeout = 30 * time.Second
	tb.Cleanup(hc.CloseIdleConnections)
	return &server{name: name, base: strings.TrimSuffix(cfg.Host, "/"), client: hc,
		prepareNamespace: func(context.Context, string) error { return nil }}
}

// startKube starts etcd and kube-apiserver v1.37.2 (internal/kubetest).
func startKube(tb testing.TB) *server {
	tb.Helper()
	return kubeServer(tb, "kube-apiserver", kubetest.StartCluster(tb, kubetest.Options{}))
}

// kubeServer is a side played by kube-apiserver c: its NamespaceLifecycle
// admission needs a case's namespace to exist, so it is created first.
func kubeServer(tb testing.TB, name string, c *kubetest.Cluster) *server {
	tb.Helper()
	s := newServer(tb, name, c.Config)
	s.prepareNamespace = func(ctx context.Context, ns string) error {
		body := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/v1/namespaces", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("create namespace %s: %d %s", ns, resp.StatusCode, b)
		}
		return nil
	}
	return s
}

// frontKube is a kube-apiserver v1.37.2 that stores its Events in
// eventpipe through the etcd front (--etcd-servers-overrides=/events#…)
// and everything else in its own real etcd.
type frontKube struct {
	*server
	env     *devenv.Env
	cluster *kubetest.Cluster
}

// startKubeThroughEtcdFront runs every eventpipe role in-process with the
// etcd front on a free port, then a kube-apiserver whose Events go there.
func startKubeThroughEtcdFront(tb testing.TB) *frontKube {
	tb.Helper()
	o := devtest.Options(tb)
	o.EtcdPort = 0
	o.Writer.BatchWait = 20 * time.Millisecond
	env := devtest.Run(tb, o)
	if env.EtcdEndpoint == "" {
		tb.Fatal("eventpipe runs no etcd front")
	}
	// Started after eventpipe, so stopped before it.
	c := kubetest.StartCluster(tb, kubetest.Options{
		ExtraArgs: []string{"--etcd-servers-overrides=/events#" + env.EtcdEndpoint},
	})
	return &frontKube{server: kubeServer(tb, "kube-apiserver through the etcd front", c), env: env, cluster: c}
}

// requireEventsInEventpipe checks that the Events the cases wrote went
// through the etcd front: eventpipe's index holds events in the front's
// scope (once the writer has committed everything in the stream), and the
// cluster's own etcd has no key under /registry/events/.
func (f *frontKube) requireEventsInEventpipe(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	stream, err := f.env.JS.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatalf("stream %s: %v", eventlog.StreamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", eventlog.StreamName, err)
	}
	if info.State.LastSeq == 0 {
		t.Fatalf("stream %s holds no message: nothing went through the etcd front", eventlog.StreamName)
	}
	if err := f.env.Writer.WaitFor(ctx, info.State.LastSeq); err != nil {
		t.Fatalf("writer did not commit up to sequence %d: %v", info.State.LastSeq, err)
	}
	sc := devenv.EtcdScope
	n, err := f.env.Store.CountLatest(ctx, chstore.LatestFilter{Scope: &sc})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("eventpipe holds no event in the etcd front's scope %s: the cases did not go through the front", sc)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{f.cluster.EtcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("count /registry/events/ in the cluster's etcd: %v", err)
	}
	if resp.Count != 0 {
		t.Errorf("the cluster's own etcd holds %d keys under /registry/events/; want 0 (all in eventpipe)", resp.Count)
	}
	t.Logf("through the etcd front: eventpipe holds %d events in scope %s (stream at sequence %d); the cluster's etcd holds %d",
		n, sc, info.State.LastSeq, resp.Count)
}

// startEventpipe runs every eventpipe role in-process, as `eventpipe dev`
// does without the simulated cluster, with a short writer batch so that
// lists catch up with writes quickly.
func startEventpipe(tb testing.TB) *server {
	tb.Helper()
	o := devtest.Options(tb)
	o.Writer.BatchWait = 20 * time.Millisecond
	env := devtest.Run(tb, o)
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		tb.Fatalf("eventpipe kubeconfig: %v", err)
	}
	return newServer(tb, "eventpipe", cfg)
}

// exchange is one request's answer, decoded.
type exchange struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType,omitempty"`
	// Warnings are the Warning headers' texts, in order.
	Warnings []string `json:"warnings,omitempty"`
	// Body is the response body as JSON (YAML and protobuf are decoded),
	// normalized; for a watch, the list of events read.
	Body any `json:"body,omitempty"`
	// Text is a body that is not JSON, YAML or protobuf, as it is.
	Text string `json:"text,omitempty"`
}

// do sends one request and decodes what comes back. A watch reads up to
// watchEvents events, or what arrives within watchWait.
func (s *server) do(ctx context.Context, method, path, query string, header http.Header, body []byte, watchEvents int) (*exchange, error) {
	u := s.base + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	ex := &exchange{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Warnings: resp.Header.Values("Warning")}
	if watchEvents > 0 && resp.StatusCode == http.StatusOK {
		next := jsonWatchEvents(resp.Body)
		if mt, _, _ := mime.ParseMediaType(ex.ContentType); mt == protobufMedia {
			next = protobufWatchEvents(resp.Body)
		}
		ex.Body, err = readWatch(ctx, next, watchEvents)
		return ex, err
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, u, err)
	}
	ex.Body, ex.Text, err = decodeBody(ex.ContentType, raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return ex, nil
}

// watchWait bounds how long a watch step waits for the events it expects.
const watchWait = 3 * time.Second

// readWatch reads up to n watch events with next and stops; when fewer
// arrive within watchWait, the list ends with a marker saying so.
func readWatch(ctx context.Context, next func() (any, error), n int) (any, error) {
	type result struct {
		ev  any
		err error
	}
	ch := make(chan result)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			v, err := next()
			select {
			case ch <- result{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	events := []any{}
	timer := time.NewTimer(watchWait)
	defer timer.Stop()
	for len(events) < n {
		select {
		case r := <-ch:
			if r.err == io.EOF {
				return append(events, "<watch closed by server>"), nil
			}
			if r.err != nil {
				return append(events, "<watch failed: "+r.err.Error()+">"), nil
			}
			events = append(events, r.ev)
		case <-timer.C:
			return append(events, fmt.Sprintf("<no more events in %s>", watchWait)), nil
		}
	}
	// One more event than the case expects is a difference too: wait a
	// little for it.
	select {
	case r := <-ch:
		if r.err == nil {
			events = append(events, "<unexpected further event>", r.ev)
		}
	case <-time.After(watchExtraWait):
	}
	return events, nil
}

// jsonWatchEvents reads a JSON watch stream, one event per call.
func jsonWatchEvents(body io.Reader) func() (any, error) {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	return func() (any, error) {
		var v any
		err := dec.Decode(&v)
		return v, err
	}
}

// protobufWatchEvents reads a protobuf watch stream (length-prefixed
// frames, each a WatchEvent whose object is a protobuf body of its own),
// one event per call, as JSON values.
func protobufWatchEvents(body io.Reader) func() (any, error) {
	return func() (any, error) {
		var size [4]byte
		if _, err := io.ReadFull(body, size[:]); err != nil {
			return nil, err
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(body, frame); err != nil {
			return nil, err
		}
		return decodeProtobufWatchEvent(frame)
	}
}

// watchExtraWait is how long a watch step waits for an unexpected event
// after the ones it expects.
const watchExtraWait = 300 * time.Millisecond
