// Package uibench measures the web UI's first view in chromium: the
// timeline (two EventFacetQuery histograms), the facets and the first
// EventQuery page over a 60-day range, on the generator's realistic events
// copied along 60 days inside ClickHouse (bench/internal/history, as
// bench/eventquery does), served by the API server with the UI.
//
//	UI_BENCH_EVENTS=10000000 UI_BENCH_DIR=/var/tmp/uibench make bench-ui
package uibench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventpipe/eventpipe/bench/internal/history"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

const (
	days    = 60
	tenants = 10
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkFirstView(b *testing.B) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(b, errors.New("chromium is not installed (Debian package chromium)"))
	}
	n := envInt("UI_BENCH_EVENTS", 10_000_000)
	iters := int(envInt("UI_BENCH_ITERS", 10))
	s := history.Store(b, os.Getenv("UI_BENCH_DIR"))
	ctx := context.Background()
	ds := history.Ensure(b, s, history.Options{Events: n, Days: days, Tenants: tenants, Now: time.Now().UTC(),
		TenantName: func(i int) string { return fmt.Sprintf("tenant-%d", i) }})
	maxSeq, rows := ds.MaxSeq, ds.Rows
	url := history.Serve(b, s, maxSeq, `admin-token,admin,admin,"system:masters"`+"\n"+
		`tenant-token,dev,dev,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=tenant-0"`+"\n")

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
			b.Logf("%s: %d events in the view (of %s stored states for this user); open → first view p50 %.0f ms, max %.0f ms (queries + render p50 %.0f ms; slowest API call p50 %.0f ms)",
				who.name, total, who.events, pct(wall, 0.5), pct(wall, 1), pct(page, 0.5), pct(calls, 0.5))
		})
	}
}
