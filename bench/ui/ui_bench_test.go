// Package uibench measures the web UI's first view in chromium: the
// timeline (two EventFacetQuery histograms), the facets and the first
// EventQuery page over a 60-day range, on a history generated inside
// ClickHouse (INSERT … SELECT from system.numbers into the real events
// table, as bench/eventquery does), served by the API server with the UI.
//
//	UI_BENCH_EVENTS=10000000 UI_BENCH_DIR=/var/tmp/uibench make bench-ui
package uibench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

const (
	days    = 60
	tenants = 10
	nsPer   = 20
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// fill writes n events spread evenly over the 60 days before now into the
// events table, one INSERT … SELECT per day (so each block lands in one
// day's partition): tenants tenant-0…tenant-9 round robin, 20 namespaces
// each, five kinds, ten reasons of which three are warnings.
func fill(b *testing.B, s *chstore.Store, n int64, now time.Time) {
	ctx := context.Background()
	perDay := n / days
	t0 := time.Now()
	for d := int64(0); d < days; d++ {
		from := now.Add(-time.Duration(days-d) * 24 * time.Hour).Unix()
		first := d * perDay
		q := fmt.Sprintf(`INSERT INTO %[1]s.events (scope_type, scope_name, namespace, name, uid, seq, op, last_ts, last_ts_nanos,
 involved_kind, involved_namespace, involved_name, involved_uid, involved_api_version, involved_resource_version, involved_field_path,
 reason, message, type, source_component, source_host, reporting_controller, reporting_instance, action,
 related_kind, related_namespace, related_name, count, rest)
SELECT 'Project', concat('tenant-', toString(i %% %[2]d)), ns, concat('ev-', toString(i)), toString(i), i + 1, 1,
 toDateTime(%[3]d + intDiv(number * 86400, %[4]d)), 0,
 ['Pod','Deployment','ReplicaSet','Node','Job'][i %% 5 + 1], ns, concat('obj-', toString(h %% 1000)), '', 'v1', '', '',
 ['Pulling','Pulled','Created','Started','BackOff','FailedMount','Killing','ScalingReplicaSet','Scheduled','Unhealthy'][h %% 10 + 1],
 concat('event ', toString(i)), if(h %% 10 IN (4, 5, 9), 'Warning', 'Normal'), 'kubelet', '', '', '', '', '', '', '', 1, ''
FROM (SELECT number, number + %[5]d AS i, intHash32(number + %[5]d) AS h, concat('ns-', toString(intDiv(number + %[5]d, %[2]d) %% %[6]d)) AS ns
      FROM system.numbers LIMIT %[4]d)`, "`"+s.Database()+"`", tenants, from, perDay, first, nsPer)
		if err := s.Conn().Exec(ctx, q); err != nil {
			b.Fatalf("fill day %d: %v", d, err)
		}
	}
	b.Logf("generated %d events in %s", perDay*days, time.Since(t0).Round(time.Second))
}

// committed says every generated state is committed.
type committed uint64

func (w committed) Load() uint64                          { return uint64(w) }
func (w committed) WaitFor(context.Context, uint64) error { return nil }

// emptyLog: nothing is written during the benchmark, so the log holds
// nothing after the watermark.
type emptyLog struct{ event.Log }

func (emptyLog) Bounds(context.Context) (uint64, uint64, error) { return 1, 1, nil }

func (emptyLog) PublishAll(context.Context, []*eventlog.Record, []string) error {
	return errors.New("the UI benchmark's server takes no writes")
}

// serve runs the API server (with the UI) over s and returns its URL.
func serve(b *testing.B, s *chstore.Store, watermark uint64) string {
	dir := b.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	lines := `admin-token,admin,admin,"system:masters"` + "\n" +
		`tenant-token,dev,dev,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=tenant-0"` + "\n"
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = filepath.Join(dir, "certs")
	o.TokenAuthFile = tokens
	cfg, err := o.Config(apiserver.Backends{Log: emptyLog{}, Index: event.ClickHouseIndex{Store: s}, History: s, Watermark: committed(watermark)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); _ = srv.Run(ctx) }()
	url := "https://" + l.Addr().String()
	hc := &http.Client{Transport: insecure()}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		if resp, err := hc.Get(url + "/ui/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatal("API server not serving /ui/ within a minute")
		}
	}
}

func BenchmarkFirstView(b *testing.B) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(b, errors.New("chromium is not installed (Debian package chromium)"))
	}
	n := envInt("UI_BENCH_EVENTS", 10_000_000)
	iters := int(envInt("UI_BENCH_ITERS", 10))
	var srv *chserver.Server
	if dir := os.Getenv("UI_BENCH_DIR"); dir != "" {
		// A kept directory lets later runs reuse the dataset.
		if srv, err = chserver.Start(context.Background(), chserver.Options{Dir: dir}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Stop() })
	} else {
		srv = chtest.ForTest(b)
	}
	s := storetest.Migrated(b, srv)
	ctx := context.Background()
	now := time.Now().UTC()
	var have uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+s.Database()+".events").Scan(&have); err != nil {
		b.Fatal(err)
	}
	var newest time.Time
	if have > 0 {
		if err := s.Conn().QueryRow(ctx, "SELECT max(last_ts) FROM "+s.Database()+".events").Scan(&newest); err != nil {
			b.Fatal(err)
		}
	}
	// Regenerate unless a kept dataset has the size and is recent (its
	// days must still lie in the 60-day window).
	if int64(have) < n/days*days || now.Sub(newest) > 6*time.Hour {
		if err := s.Conn().Exec(ctx, "TRUNCATE TABLE "+s.Database()+".events"); err != nil {
			b.Fatal(err)
		}
		fill(b, s, n, now)
	} else {
		b.Logf("reusing %d stored events", have)
	}
	var maxSeq, rows uint64
	if err := s.Conn().QueryRow(ctx, "SELECT max(seq), count() FROM "+s.Database()+".events").Scan(&maxSeq, &rows); err != nil {
		b.Fatal(err)
	}
	url := serve(b, s, maxSeq)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.NoSandbox)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		b.Fatal(err)
	}

	// The case is the 60-day range; 7 days is the page's default.
	for _, who := range []struct{ name, token, events, from string }{
		{"admin-all-tenants-60d", "admin-token", fmt.Sprint(rows), "now-60d"},
		{"tenant-60d", "tenant-token", fmt.Sprint(rows / tenants), "now-60d"},
		{"admin-all-tenants-7d", "admin-token", fmt.Sprint(rows), "now-7d"},
		{"tenant-7d", "tenant-token", fmt.Sprint(rows / tenants), "now-7d"},
	} {
		if only := os.Getenv("UI_BENCH_USERS"); only != "" && !strings.Contains(only, who.name) {
			continue
		}
		b.Run(who.name, func(b *testing.B) {
			var page, wall, calls []time.Duration
			total := 0
			b.ResetTimer()
			for i := 0; i < iters; i++ {
				// A new tab each time: the page, its modules and the
				// three queries, as a user opening a link.
				tab, cancel := chromedp.NewContext(browser)
				tctx, cancelT := context.WithTimeout(tab, 2*time.Minute)
				t0 := time.Now()
				err := chromedp.Do(tctx,
					chromedp.Navigate(url+"/ui/?from="+who.from+"#token="+who.token),
					chromedp.WaitVisible(chromedp.CSS(`body[data-loaded] #events tr.event`)),
				)
				w := time.Since(t0)
				var ms, tot int
				var slowest float64
				if err == nil {
					// The slowest API call of the view, as the browser timed it.
					slowest, err = chromedp.Run(tctx, chromedp.Evaluate[float64](
						`Math.max(...performance.getEntriesByType('resource').filter(e => e.name.includes('/apis/')).map(e => e.duration))`))
				}
				if err == nil {
					ms, err = chromedp.Run(tctx, chromedp.Evaluate[int](`Number(document.body.dataset.firstViewMs)`))
				}
				if err == nil {
					tot, err = chromedp.Run(tctx, chromedp.Evaluate[int](`Number(document.getElementById('total').dataset.total)`))
				}
				if err == nil {
					var each string
					each, err = chromedp.Run(tctx, chromedp.Evaluate[string](
						`performance.getEntriesByType('resource').filter(e => e.name.includes('/apis/')).map(e => e.name.split('/').pop() + ' ' + Math.round(e.duration) + ' ms').join(', ')`))
					b.Logf("API calls: %s", each)
				}
				var shown string
				if err != nil {
					shown, _ = chromedp.Run(tab, chromedp.Evaluate[string](`['banner', 'selector-error', 'range-error', 'login-error'].map(id => document.getElementById(id)).filter(e => !e.hidden && e.textContent).map(e => e.textContent).join(' | ')`))
				}
				cancelT()
				cancel()
				if err != nil {
					// Say what the page showed (a retry banner, an error).
					b.Errorf("%s: no first view within 2 minutes (%v); the page said: %s", who.name, err, shown)
					return
				}
				page = append(page, time.Duration(ms)*time.Millisecond)
				calls = append(calls, time.Duration(slowest*1e6))
				wall = append(wall, w)
				total = tot
			}
			b.StopTimer()
			// p is 0.5 for the median, 1 for the slowest.
			pct := func(d []time.Duration, p float64) float64 {
				sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
				return float64(d[int(float64(len(d)-1)*p)]) / 1e6
			}
			b.ReportMetric(pct(wall, 0.5), "open-p50-ms")
			b.ReportMetric(pct(wall, 1), "open-max-ms")
			b.ReportMetric(pct(page, 0.5), "queries-p50-ms")
			b.ReportMetric(pct(page, 1), "queries-max-ms")
			b.ReportMetric(pct(calls, 0.5), "slowest-call-p50-ms")
			b.ReportMetric(float64(total), "events-in-view")
			b.Logf("%s: %d events in the view (of %s for this user); open → first view p50 %.0f ms, max %.0f ms (queries + render p50 %.0f ms; slowest API call p50 %.0f ms)",
				who.name, total, who.events, pct(wall, 0.5), pct(wall, 1), pct(page, 0.5), pct(calls, 0.5))
		})
	}
}

// insecure trusts the server's self-signed certificate (loopback only).
func insecure() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}
