package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/writer"
)

func newWriterCmd(g *globalOptions) *cobra.Command {
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	storeCfg := chstore.DefaultConfig()
	writerCfg := writer.DefaultConfig()
	metricsAddr := ":9464"
	migrate := true
	cmd := &cobra.Command{
		Use:   "writer",
		Short: "Move event states from the JetStream EVENTS stream into ClickHouse",
		Long: "Runs the writer: a durable consumer on EVENTS that inserts batches into ClickHouse,\n" +
			"acknowledges them after commit and publishes the committed watermark. Run exactly one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
				errs = append(errs, fmt.Errorf("--metrics.addr %q must be host:port or :port", metricsAddr))
			}
			if err := validate(natsCfg.Validate(), streamCfg.Validate(), storeCfg.Validate(), writerCfg.Validate(), errs); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			natsCfg.Name = "eventpipe-writer"
			nc, js, err := natsCfg.Connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := eventlog.Ensure(ctx, js, streamCfg); err != nil {
				return err
			}
			store, err := chstore.Open(ctx, storeCfg)
			if err != nil {
				return err
			}
			defer store.Close()
			if migrate {
				if _, err := store.Migrate(ctx); err != nil {
					return err
				}
			}
			reg := newRegistry()
			w := writer.New(js, store, writerCfg, streamCfg, reg, log)
			srv, err := serveHTTP(ctx, metricsAddr, reg, func() error {
				if err := natsReady(nc); err != nil {
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
	natsCfg.RegisterFlags(fs)
	streamCfg.RegisterFlags(fs)
	storeCfg.RegisterFlags(fs)
	writerCfg.RegisterFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	fs.BoolVar(&migrate, "clickhouse.migrate", migrate, "apply pending schema migrations at start-up")
	return cmd
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func natsReady(nc *nats.Conn) error {
	if !nc.IsConnected() {
		return fmt.Errorf("NATS connection is %s", nc.Status())
	}
	return nil
}

// serveHTTP serves /metrics, /healthz and /readyz on addr until ctx ends.
// It listens before returning, so a busy port fails start-up.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, ready func() error) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--metrics.addr): %w", addr, err)
	}
	srv := &http.Server{Addr: l.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the process goes on; metrics are not worth stopping the writer for
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	return srv, nil
}
