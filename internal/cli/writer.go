package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/roles"
)

func newWriterCmd(g *globalOptions) *cobra.Command {
	conn := newConnFlags(true)
	o := roles.DefaultWriterOptions()
	metricsAddr := ":9464"
	cmd := &cobra.Command{
		Use:   "writer",
		Short: "Move event states from the JetStream EVENTS stream into ClickHouse",
		Long: "Runs the writer: a durable consumer on EVENTS that inserts batches into ClickHouse,\n" +
			"acknowledges them after commit and publishes the committed watermark. Replicas elect one\n" +
			"active writer through a lease in JetStream KV; the others stand by (docs/high-availability.md).\n" +
			"It also runs the retention worker, which deletes each tenant's events past its tier's retention.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, log, err := conn.start(ctx, g, "eventpipe-writer", o.Validate(), validateAddr(metricsAddr))
			if err != nil {
				return err
			}
			defer c.Close()
			reg := newRegistry()
			w, err := roles.NewWriter(ctx, c, o, reg, log)
			if err != nil {
				return err
			}
			srv, err := serveHTTP(ctx, metricsAddr, reg, func() error {
				if err := c.NATSReady(); err != nil {
					return err
				}
				return w.Ready()
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("writer serving metrics", "addr", srv.Addr)
			return w.Run(ctx)
		},
	}
	fs := cmd.Flags()
	conn.AddFlags(fs)
	o.AddFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	return cmd
}

// validateAddr checks --metrics.addr.
func validateAddr(addr string) []error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return []error{fmt.Errorf("--metrics.addr %q must be host:port or :port", addr)}
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveHTTP serves /metrics, /healthz and /readyz on addr until ctx ends;
// /readyz fails while ready does.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, ready func() error) (*http.Server, error) {
	return serveHTTPChecks(ctx, addr, reg, nil, ready)
}
