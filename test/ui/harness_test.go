// Package ui tests the web UI in a real browser: Debian's chromium, driven
// by chromedp, against dev mode with a generated history. One dev
// environment and one browser serve every subtest; each subtest has a tab
// of its own (and so its own session storage, its own login).
package ui

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "also write each view's screenshot to docs/images/")

// errNoChromium says what to install.
var errNoChromium = errors.New("chromium is not installed (Debian package chromium; scripts/install-deps.sh installs it)")

// chromiumPath finds the browser: $CHROMIUM, else chromium on PATH. It
// skips tb when there is none, and fails it when CI=true.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(tb, errNoChromium)
	return ""
}

// stack is the shared dev environment and browser.
type stack struct {
	env     *devenv.Env
	browser context.Context
	admin   *kubernetes.Clientset
	alpha   *kubernetes.Clientset
	beta    *kubernetes.Clientset
	// tokens of the dev users, by kubeconfig.
	adminToken, alphaToken string
	artifacts              string
}

// demoHistory is how far back the generated history reaches.
const demoHistory = 5 * 24 * time.Hour

func newStack(t *testing.T) *stack {
	t.Helper()
	chromium := chromiumPath(t)
	o := devtest.Options(t)
	// The simulated cluster's history, and (almost) no live writes, so
	// that counts stay put while a test compares them.
	o.Demo, o.DemoBackfill, o.DemoHistory, o.DemoRate = true, 4000, demoHistory, 0.001
	o.EtcdPort = -1
	o.Writer.BatchWait = 50 * time.Millisecond
	env := devtest.Run(t, o)

	s := &stack{env: env}
	s.admin, s.adminToken = client(t, env.Kubeconfig)
	for _, k := range env.TenantKubeconfigs {
		cs, tok := client(t, k.Path)
		switch k.Scope.Name {
		case "alpha":
			s.alpha, s.alphaToken = cs, tok
		case "beta":
			s.beta = cs
		}
	}
	require.NotNil(t, s.alpha)
	require.NotNil(t, s.beta)

	s.artifacts = os.Getenv("EVENTPIPE_TEST_ARTIFACTS")
	if s.artifacts == "" {
		s.artifacts = filepath.Join(os.TempDir(), "eventpipe-ui-screenshots")
	}
	require.NoError(t, os.MkdirAll(s.artifacts, 0o755))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.WindowSize(1400, 1000),
		// dev mode's self-signed certificate, on loopback only.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.NoSandbox, // CI runs as root, where chromium's sandbox will not start
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as browser.
	require.NoError(t, chromedp.Do(browser))
	s.browser = browser
	return s
}

func client(t *testing.T, kubeconfig string) (*kubernetes.Clientset, string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs, cfg.BearerToken
}

// errorRecorder collects uncaught errors, failed promises and anything the
// Content-Security-Policy blocked, so that a test can say "nothing else
// broke".
const errorRecorder = `window.__uiErrors = [];
window.addEventListener('error', (e) => window.__uiErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__uiErrors.push(String(e.reason && (e.reason.stack || e.reason))));
document.addEventListener('securitypolicyviolation', (e) => window.__uiErrors.push('CSP blocked ' + e.blockedURI + ' (' + e.violatedDirective + ')'));`

// tab opens a new tab in the shared browser; it closes when t ends, after
// checking that the page threw nothing.
func (s *stack) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(s.browser)
	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdpAddScript(ctx, tg, errorRecorder)
		return err
	})))
	t.Cleanup(func() {
		var errs []string
		if err := run(ctx, chromedp.Evaluate[[]string](`window.__uiErrors || []`), &errs); err == nil && len(errs) > 0 {
			t.Errorf("the page threw: %s", strings.Join(errs, "\n"))
		}
		cancel()
	})
	return ctx
}

func cdpAddScript(ctx context.Context, tg *chromedp.Target, src string) (page.ScriptIdentifier, error) {
	res, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
	return res.Identifier, err
}

// run runs one action with a deadline and stores its value in out.
func run[T any](ctx context.Context, a chromedp.Action[T], out *T) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err == nil && out != nil {
		*out = v
	}
	return err
}

// do runs steps with a deadline.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(c, steps...))
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	var v T
	require.NoError(t, run(ctx, chromedp.Evaluate[T](expr), &v), expr)
	return v
}

// waitFor polls expr (a JavaScript boolean expression) on a ticker until it
// is true or the deadline passes, and returns how long that took.
func waitFor(t *testing.T, ctx context.Context, expr string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for {
		var ok bool
		if err := run(ctx, chromedp.Evaluate[bool](expr), &ok); err == nil && ok {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline:
			var body string
			_ = run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`), &body)
			t.Fatalf("not true within %s: %s\npage:\n%s", within, expr, body)
		}
	}
}

// loadedAfter waits until the view has rendered more times than n
// (body[data-loaded] counts finished renders).
func loadedAfter(t *testing.T, ctx context.Context, n int) int {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf(`Number(document.body.dataset.loaded || 0) > %d`, n), 30*time.Second)
	return eval[int](t, ctx, `Number(document.body.dataset.loaded)`)
}

func loaded(t *testing.T, ctx context.Context) int {
	return eval[int](t, ctx, `Number(document.body.dataset.loaded || 0)`)
}

// screenshot writes what the tab shows (1400×1000) as NAME.png into the artifacts
// directory, and into docs/images with -update-screenshots.
func (s *stack) screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	require.NoError(t, run(ctx, chromedp.CaptureScreenshot(), &png))
	file := "ui-" + name + ".png"
	require.NoError(t, os.WriteFile(filepath.Join(s.artifacts, file), png, 0o644))
	t.Logf("screenshot: %s", filepath.Join(s.artifacts, file))
	if *updateScreenshots {
		root, err := kubetest.RepoRoot()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, "docs", "images", file), png, 0o644))
	}
}

// facetTotal asks the API, as the client's user, how many events match.
func facetTotal(t *testing.T, cs *kubernetes.Clientset, spec map[string]any) (int64, []facet) {
	t.Helper()
	var q struct {
		Status struct {
			Total  int64   `json:"total"`
			Facets []facet `json:"facets"`
		} `json:"status"`
	}
	raw := post(t, cs, "eventfacetqueries", spec)
	require.NoError(t, json.Unmarshal(raw, &q))
	return q.Status.Total, q.Status.Facets
}

type facet struct {
	Field  string `json:"field"`
	Values []struct {
		Value string `json:"value"`
		Count int64  `json:"count"`
	} `json:"values"`
}

// post creates an activity.miloapis.com query and returns the raw answer,
// or the API's error Status as raw JSON with err.
func postRaw(cs *kubernetes.Clientset, resource string, spec map[string]any) ([]byte, error) {
	kind := map[string]string{"eventqueries": "EventQuery", "eventfacetqueries": "EventFacetQuery"}[resource]
	body, _ := json.Marshal(map[string]any{"apiVersion": "activity.miloapis.com/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": "ui"}, "spec": spec})
	return cs.Discovery().RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/"+resource).
		Body(body).SetHeader("Content-Type", "application/json").Do(context.Background()).Raw()
}

func post(t *testing.T, cs *kubernetes.Clientset, resource string, spec map[string]any) []byte {
	t.Helper()
	raw, err := postRaw(cs, resource, spec)
	require.NoError(t, err, string(raw))
	return raw
}

// ingest posts events to the webhook receiver as NDJSON, as an event sink
// does.
func ingest(t *testing.T, hc *http.Client, url, token string, lines [][]byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/ingest/v1/events", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	require.Less(t, resp.StatusCode, 300, b.String())
}

// insecureClient talks to dev mode's self-signed server on loopback.
func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}
