package cli

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/devenv"
)

func newDevCmd(g *globalOptions) *cobra.Command {
	o := devenv.DefaultOptions()
	metricsAddr := "127.0.0.1:0"
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every role on one machine, with an embedded JetStream, a private ClickHouse and demo data",
		Long: "Starts an embedded JetStream server and a clickhouse-server child process (found on PATH),\n" +
			"applies migrations, runs the writer and a simulated cluster that writes realistic events\n" +
			"for two tenants. Everything lives under --data-dir and survives restarts. When ready it\n" +
			"writes DIR/dev.env and prints what to try. Ctrl-C stops everything.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
				errs = append(errs, fmt.Errorf("--metrics.addr %q must be host:port", metricsAddr))
			}
			if err := validate(o.Validate(), errs); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			reg := newRegistry()
			o.Registry = reg
			var ready atomic.Bool
			srv, err := serveHTTP(cmd.Context(), metricsAddr, reg, func() error {
				if !ready.Load() {
					return errors.New("starting")
				}
				return nil
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			return devenv.Run(cmd.Context(), o, log, func(env *devenv.Env) {
				ready.Store(true)
				fmt.Fprintf(g.stdout, `
eventpipe dev is ready. Data: %s
  API server: %s (platform admin kubeconfig: %s)
  etcd front: %s (a kube-apiserver started with --etcd-servers-overrides=/events#%s
              stores its Events here, in scope %s)
  Audit:      kube-apiserver --audit-webhook-config-file=%s --audit-policy-file=…
              sends its audit records here, into the same scope (docs/audit.md)
  JetStream:  %s
  ClickHouse: %s (database %s)
  Metrics:    http://%s/metrics
  Settings:   %s
  Web UI:     %s
              (logs you in as the platform admin; accept the dev certificate.
%s              Elsewhere: open %s/ui/ and paste a token, or use kubectl proxy.)

Try:
  export KUBECONFIG=%s
  kubectl get events -A
  kubectl get events -A --field-selector type=Warning -o wide
  kubectl get events -A -w
  kubectl get activities -A
  kubectl create -o yaml -f - <<<'{"apiVersion":"activity.miloapis.com/v1alpha1","kind":"EventQuery","metadata":{"name":"q"},"spec":{"startTime":"now-7d","endTime":"now","fieldSelector":"reason in (BackOff,FailedMount)","limit":5}}'
  kubectl --kubeconfig %s get events -A    # a tenant sees only its own
  kubectl --kubeconfig %s get tenantusages
  clickhouse-client --port %s -q "SELECT reason, type, uniqExact(namespace, name, uid) AS events FROM %s.events GROUP BY reason, type ORDER BY events DESC LIMIT 10"

Ctrl-C stops everything; run the same command again to continue with the same data.
`, o.DataDir, env.APIServerURL, env.Kubeconfig, orNone(env.EtcdEndpoint), orNone(env.EtcdEndpoint), devenv.EtcdScope, env.AuditWebhookConfig, env.NATSURL, env.ClickHouseAddr, env.Database, srv.Addr, env.EnvFile,
					env.UIURL, tenantUILines(env), env.APIServerURL,
					env.Kubeconfig, tenantKubeconfig(env), tenantKubeconfig(env), portOf(env.ClickHouseAddr), env.Database)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for all dev data (JetStream, ClickHouse, dev.env); kept across restarts")
	fs.IntVar(&o.NATSPort, "nats.port", o.NATSPort, "port of the embedded NATS server at 127.0.0.1; -1 picks a free one")
	fs.IntVar(&o.EtcdPort, "etcd.port", o.EtcdPort, "port of the etcd front at 127.0.0.1 (no TLS); 0 picks a free one, -1 runs none")
	fs.IntVar(&o.APIServerPort, "apiserver.port", o.APIServerPort, "port of the API server at 127.0.0.1; 0 picks a free one")
	fs.BoolVar(&o.Demo, "demo", o.Demo, "run the simulated cluster that writes demo events")
	fs.BoolVar(&o.Activities, "activities", o.Activities, "run the activity pipeline (processor, indexer, built-in policies) and serve activities")
	fs.Float64Var(&o.DemoRate, "demo.rate", o.DemoRate, "event states per second from the simulated cluster")
	fs.IntVar(&o.DemoBackfill, "demo.backfill", o.DemoBackfill, "event states of history written on first start (0 for none)")
	fs.DurationVar(&o.DemoHistory, "demo.history", o.DemoHistory, "how far back the first start's history reaches")
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz (port 0 picks a free one)")
	o.Stream.AddFlags(fs)
	o.Writer.AddFlags(fs)
	return cmd
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// tenantUILines lists the web UI's address for each demo tenant's user.
func tenantUILines(env *devenv.Env) string {
	var b strings.Builder
	for _, k := range env.TenantKubeconfigs {
		fmt.Fprintf(&b, "              As %s (tenant %s): %s\n", k.User, k.Scope, k.UIURL)
	}
	return b.String()
}

// tenantKubeconfig is the first demo tenant's kubeconfig, for the hints.
func tenantKubeconfig(env *devenv.Env) string {
	if len(env.TenantKubeconfigs) == 0 {
		return env.Kubeconfig
	}
	return env.TenantKubeconfigs[0].Path
}

// orNone prints an empty setting as "none".
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
