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

	"github.com/eventpipe/eventpipe/internal/exporter"
	"github.com/eventpipe/eventpipe/internal/roles"
)

func newExportCmd(g *globalOptions) *cobra.Command {
	conn := newConnFlags(false)
	cfg := exporter.DefaultConfig()
	metricsAddr := ":9465"
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a Kubernetes cluster's Events into the JetStream EVENTS stream",
		Long: "Lists and watches Events (events.k8s.io/v1 when served, core/v1 otherwise) in a source cluster and\n" +
			"publishes every state, idempotently, with the cluster's tenant scope and a source-cluster label.\n" +
			"Resumes from a checkpoint in JetStream KV; with --exporter.leader-elect, one of several replicas exports.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, log, err := conn.start(ctx, g, "eventpipe-exporter", cfg.Validate(), validateAddr(metricsAddr))
			if err != nil {
				return err
			}
			defer c.Close()
			reg := newRegistry()
			exp, err := roles.NewExporter(ctx, c, cfg, reg, log)
			if err != nil {
				return err
			}
			srv, err := serveHTTPChecks(ctx, metricsAddr, reg, func() error {
				if err := c.NATSReady(); err != nil {
					return err
				}
				return exp.Healthy()
			}, func() error {
				if err := c.NATSReady(); err != nil {
					return err
				}
				return exp.Ready()
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("exporter serving metrics", "addr", srv.Addr)
			return exp.Run(ctx)
		},
	}
	fs := cmd.Flags()
	conn.AddFlags(fs)
	cfg.AddFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	return cmd
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
