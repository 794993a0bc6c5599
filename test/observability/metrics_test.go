package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/exporter"
	"github.com/eventpipe/eventpipe/internal/roles"
)

// prometheusMade are series Prometheus makes itself rather than scrapes.
var prometheusMade = map[string]bool{"up": true}

// TestDashboardAndAlertMetricsExist runs dev mode (every role but the
// exporter, in this process), an exporter beside it, makes a little traffic
// so that labelled series exist, scrapes every /metrics and checks that each
// metric the alerts and the dashboard name is among the scraped series.
//
// Where each role's metrics come from, as a cluster scrapes them:
//   - writer, activity processor, etcd front and the API server's tiers
//     metrics: dev mode's registry, which `eventpipe dev` serves on
//     --metrics.addr (here the same promhttp handler on a test server);
//     as separate processes each serves its own part of it;
//   - the API server's Kubernetes metrics (apiserver_*): its own /metrics,
//     read with the admin's token, as a ServiceMonitor reads it;
//   - the exporter: dev mode does not run one, so the test runs the export
//     role against dev mode's own API server (a tenant's view of it, so its
//     copies, which land in another scope, are never read back) and serves
//     its registry as `eventpipe export` does.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	want := wantedMetrics(t)

	o := devtest.Options(t)
	o.Demo, o.DemoBackfill, o.DemoRate = true, 200, 50 // API traffic of every write verb
	reg := newRegistry()
	o.Registry = reg
	env := devtest.Run(t, o)
	devSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(devSrv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	expReg := newRegistry()
	startExporter(ctx, t, env.NATSURL, env.TenantKubeconfigs[0].Path, expReg)
	expSrv := httptest.NewServer(promhttp.HandlerFor(expReg, promhttp.HandlerOpts{}))
	t.Cleanup(expSrv.Close)

	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tenantCfg, err := clientcmd.BuildConfigFromFlags("", env.TenantKubeconfigs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := kubernetes.NewForConfig(tenantCfg)
	if err != nil {
		t.Fatal(err)
	}
	watchAndCreate(ctx, t, admin, tenant)
	etcdTraffic(ctx, t, env.EtcdEndpoint)

	scrapeAPI := func() (string, error) {
		b, err := admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		return string(b), err
	}
	// Some series appear only after a periodic job ran once more (the
	// tenants' usage, refreshed every 30s): poll until all are there.
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		have := map[string]bool{}
		for name, scrape := range map[string]func() (string, error){
			"dev mode": httpGet(devSrv.URL), "API server": scrapeAPI, "exporter": httpGet(expSrv.URL),
		} {
			text, err := scrape()
			if err != nil {
				t.Fatalf("scrape %s: %v", name, err)
			}
			for n := range sampleNames(text) {
				have[n] = true
			}
		}
		missing = missing[:0]
		for _, m := range want {
			if !have[m] && !prometheusMade[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	t.Logf("checked %d metrics: %s", len(want), strings.Join(want, " "))
	if len(missing) > 0 {
		t.Fatalf("named in the alerts or the dashboard but in no component's /metrics: %s", strings.Join(missing, " "))
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func httpGet(url string) func() (string, error) {
	return func() (string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", url, resp.Status)
		}
		return string(b), err
	}
}

// startExporter runs the export role from the cluster kubeconfig names into
// the JetStream at natsURL, until ctx ends.
func startExporter(ctx context.Context, t *testing.T, natsURL, kubeconfig string, reg prometheus.Registerer) {
	t.Helper()
	natsCfg := eventlog.DefaultClientConfig()
	natsCfg.URL = natsURL
	c, err := roles.Connect(ctx, "observability-test-exporter", natsCfg, eventlog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := exporter.DefaultConfig()
	cfg.Kubeconfig, cfg.ClusterName, cfg.ScopeType, cfg.ScopeName = kubeconfig, "obs", "Project", "obs-export"
	e, err := roles.NewExporter(ctx, c, cfg, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	// Cleanups run last-registered first: stop the exporter here rather
	// than wait for the caller's cancel, which runs after this one.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("exporter: %v", err)
		}
	})
}

// watchAndCreate opens a watch as the admin and creates an event as a
// tenant, and waits for the watch to deliver it: the API server's request,
// latency and watch series then exist.
func watchAndCreate(ctx context.Context, t *testing.T, admin, tenant kubernetes.Interface) {
	t.Helper()
	w, err := admin.CoreV1().Events("obs").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "obs", Name: "obs-1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "obs", Name: "p"}, Reason: "Test", Type: "Normal",
		Message: "observability test", FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1}
	if _, err := tenant.CoreV1().Events("obs").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch ended before it delivered the created event")
			}
			if e, isEvent := got.Object.(*corev1.Event); isEvent && got.Type == watch.Added && e.Name == "obs-1" {
				return
			}
		case <-timeout:
			t.Fatal("the created event did not come on the watch within 30s")
		}
	}
}

// etcdTraffic writes, reads and watches through the etcd front as
// kube-apiserver would, so that its labelled series exist.
func etcdTraffic(ctx context.Context, t *testing.T, endpoint string) {
	t.Helper()
	if endpoint == "" {
		t.Fatal("dev mode runs no etcd front")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "obs", Name: "etcd-1", UID: "uid-etcd-1", CreationTimestamp: metav1.Now()},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "obs", Name: "p"}, Reason: "Test", Type: "Normal", Count: 1}
	// kube-apiserver's storage encoding: protobuf with the "k8s\x00" envelope.
	codec := scheme.Codecs.EncoderForVersion(protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), corev1.SchemeGroupVersion)
	var b strings.Builder
	if err := codec.Encode(ev, &b); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wctx, stopWatch := context.WithCancel(cctx)
	wc := cli.Watch(wctx, "/registry/events/obs/", clientv3.WithPrefix())
	// A create as kube-apiserver writes it: a transaction on "not there yet".
	key := "/registry/events/obs/etcd-1"
	resp, err := cli.Txn(cctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, b.String())).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("create through the etcd front: %v (succeeded %v)", err, resp != nil && resp.Succeeded)
	}
	if _, err := cli.Get(cctx, "/registry/events/obs/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("range through the etcd front: %v", err)
	}
	select {
	case <-wc:
	case <-cctx.Done():
		t.Fatal("the etcd watch delivered nothing within 10s")
	}
	stopWatch()
}

// sampleNames are the metric names of the samples in a text exposition: a
// histogram's _bucket, _sum and _count appear as they do in PromQL.
func sampleNames(text string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// wantedMetrics are the metric names in the alert expressions and the
// dashboard's queries, sorted.
func wantedMetrics(t *testing.T) []string {
	t.Helper()
	dir := filesDir(t)
	set := map[string]bool{}

	b, err := os.ReadFile(filepath.Join(dir, "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricNames(r.Expr) {
				set[m] = true
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules in prometheus-rules.yaml")
	}

	b, err = os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	n = 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			for _, m := range metricNames(tg.Expr) {
				set[m] = true
			}
		}
	}
	if n == 0 {
		t.Fatal("no queries in grafana-dashboard.json")
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("templating query: %v", err)
		}
		// label_values(METRIC_SELECTOR, LABEL): only the first argument
		// names a metric.
		if m := labelValues.FindStringSubmatch(q.Query); m != nil {
			for _, name := range metricNames(m[1]) {
				set[name] = true
			}
		}
	}
	var out []string
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$`)

var (
	// Removed before identifiers are read: what cannot be a metric name.
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'` + "|`[^`]*`")
	matchers    = regexp.MustCompile(`\{[^}]*\}`)  // label matchers
	ranges      = regexp.MustCompile(`\[[^\]]*\]`) // [5m], [$__rate_interval], subqueries' [1h:5m]
	grouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	grafanaVar  = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	numbers     = regexp.MustCompile(`(^|[^\w:])(?:0x[0-9a-fA-F]+|\d[\w.]*(?:[eE][+-]?\d+)?|\.\d+)`) // numbers and durations (offset 5m)
	identifiers = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords    = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"offset": true, "bool": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// metricNames reads the metric names of a PromQL expression: identifiers
// that are not functions or aggregations (followed by "("), keywords,
// label names (inside {} or a by/on/... list), strings, numbers, durations
// or Grafana variables.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = matchers.ReplaceAllString(s, " ")
	s = ranges.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	s = numbers.ReplaceAllString(s, "$1 ")
	var out []string
	for _, m := range identifiers.FindAllStringSubmatch(s, -1) {
		if m[1] != "" { // a call: function or aggregation
			continue
		}
		if !keywords[m[0]] {
			out = append(out, m[0])
		}
	}
	return out
}
