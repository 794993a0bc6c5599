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

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// server is one side of the comparison: kube-apiserver or eventpipe.
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
	c := kubetest.StartCluster(tb, kubetest.Options{})
	s := newServer(tb, "kube-apiserver", c.Config)
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
