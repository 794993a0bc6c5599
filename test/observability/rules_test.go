// Package observability checks the monitoring content the Helm chart ships
// (deploy/helm/eventpipe/files): the Prometheus rules with promtool, and
// that every metric the alerts and the Grafana dashboard name is one the
// running components export.
package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// filesDir is where the chart's embedded files live.
func filesDir(t *testing.T) string {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy", "helm", "eventpipe", "files")
}

// promtool finds promtool (Debian's prometheus package, which
// scripts/install-deps.sh installs). Without it the test is skipped, except
// in CI, where a missing tool must not pass for a checked file.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	msg := "promtool not found on PATH; install Debian's prometheus package (scripts/install-deps.sh does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	dir := filesDir(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus-rules.yaml"},
		{"test", "rules", "prometheus-rules_test.yaml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // the test file names the rules file relative to itself
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
		t.Logf("promtool %v:\n%s", args, out)
	}
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (namespace, job) (rate(a_total{code=~"5..", x="by(y)"}[5m])) / sum(rate(a_total[$__rate_interval])) > 0.05`: "a_total a_total",
		`histogram_quantile(0.99, sum by (le) (rate(b_bucket{namespace=~"$namespace"}[10m]))) > 2`:                          "b_bucket",
		`max by (pod) (c and on (pod) d == 1) or e offset 5m unless f > bool 1e3`:                                           "c d e f",
		`topk(10, max by (scope, tier) (g) / max by (scope, tier) (h)) * ${factor}`:                                         "g h",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}
