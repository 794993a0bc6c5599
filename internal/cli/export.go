package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/exporter"
)

func newExportCmd(g *globalOptions) *cobra.Command {
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	cfg := exporter.DefaultConfig()
	metricsAddr := ":9465"
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a Kubernetes cluster's Events into the JetStream EVENTS stream",
		Long: "Lists and watches Events (events.k8s.io/v1 when served, core/v1 otherwise) in a source cluster and\n" +
			"publishes every state, idempotently, with the cluster's tenant scope and a source-cluster label.\n" +
			"Resumes from a checkpoint in JetStream KV; with --leader-elect, one of several replicas exports.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
				errs = append(errs, fmt.Errorf("--metrics.addr %q must be host:port or :port", metricsAddr))
			}
			if err := validate(natsCfg.Validate(), streamCfg.Validate(), cfg.Validate(), errs); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = cfg.Kubeconfig
			if cfg.Kubeconfig == "" {
				// In-cluster unless told otherwise; never a developer's
				// ~/.kube/config by surprise.
				rules = &clientcmd.ClientConfigLoadingRules{}
			}
			kc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
				&clientcmd.ConfigOverrides{CurrentContext: cfg.Context}).ClientConfig()
			if err != nil {
				return fmt.Errorf("source cluster client (--kubeconfig %q): %w", cfg.Kubeconfig, err)
			}
			kc.QPS, kc.Burst = cfg.QPS, cfg.Burst
			kc.UserAgent = "eventpipe-exporter"
			cs, err := kubernetes.NewForConfig(kc)
			if err != nil {
				return fmt.Errorf("source cluster client: %w", err)
			}
			natsCfg.Name = "eventpipe-exporter"
			nc, js, err := natsCfg.Connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := eventlog.Ensure(ctx, js, streamCfg); err != nil {
				return err
			}
			reader, err := eventlog.NewReader(ctx, js)
			if err != nil {
				return err
			}
			reg := newRegistry()
			exp, err := exporter.New(ctx, cfg, cs, js, exportLog{Publisher: eventlog.NewPublisher(js), Reader: reader}, reg, log)
			if err != nil {
				return err
			}
			srv, err := serveHTTPChecks(ctx, metricsAddr, reg, func() error {
				if err := natsReady(nc); err != nil {
					return err
				}
				return exp.Healthy()
			}, func() error {
				if err := natsReady(nc); err != nil {
					return err
				}
				return exp.Ready()
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("exporter serving metrics", "addr", srv.Addr)
			return exp.RunElected(ctx)
		},
	}
	fs := cmd.Flags()
	natsCfg.RegisterFlags(fs)
	streamCfg.RegisterFlags(fs)
	cfg.RegisterFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	return cmd
}

// exportLog joins the log's publisher and reader into exporter.Log.
type exportLog struct {
	*eventlog.Publisher
	*eventlog.Reader
}

// serveHTTPChecks serves /metrics, /healthz and /readyz on addr until ctx
// ends. /healthz fails while healthy does (nil: never): an exporter whose
// watch or publisher is stuck should be restarted, not only taken out of
// rotation.
func serveHTTPChecks(ctx context.Context, addr string, reg *prometheus.Registry, healthy, ready func() error) (*http.Server, error) {
	check := func(f func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if f != nil {
				if err := f(); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", check(healthy))
	mux.HandleFunc("/readyz", check(ready))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--metrics.addr): %w", addr, err)
	}
	srv := &http.Server{Addr: l.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	return srv, nil
}
