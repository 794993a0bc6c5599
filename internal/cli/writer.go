package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tiers/retention"
	"github.com/eventpipe/eventpipe/internal/writer"
)

func newWriterCmd(g *globalOptions) *cobra.Command {
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	storeCfg := chstore.DefaultConfig()
	writerCfg := writer.DefaultConfig()
	metricsAddr := ":9464"
	migrate := true
	tiersOpts := apiserver.TiersOptions{Replicas: 1}
	retentionCfg := retention.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "writer",
		Short: "Move event states from the JetStream EVENTS stream into ClickHouse",
		Long: "Runs the writer: a durable consumer on EVENTS that inserts batches into ClickHouse,\n" +
			"acknowledges them after commit and publishes the committed watermark. Run exactly one.\n" +
			"It also runs the retention worker, which deletes each tenant's events past its tier's retention.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
				errs = append(errs, fmt.Errorf("--metrics.addr %q must be host:port or :port", metricsAddr))
			}
			if retentionCfg.Interval < time.Minute {
				errs = append(errs, fmt.Errorf("--retention.interval must be at least 1m, got %s", retentionCfg.Interval))
			}
			if err := validate(natsCfg.Validate(), streamCfg.Validate(), storeCfg.Validate(), writerCfg.Validate(), errs); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := openBackends(ctx, "eventpipe-writer", natsCfg, streamCfg, storeCfg, migrate)
			if err != nil {
				return err
			}
			defer b.close()
			nc, js, store := b.nc, b.js, b.store
			reg := newRegistry()
			w := writer.New(js, store, writerCfg, streamCfg, reg, log)
			res, watcher, err := tiersOpts.LoadTiers(reg, log)
			if err != nil {
				return err
			}
			if watcher != nil {
				go watcher.Run(ctx)
			}
			go retention.New(store, res, retentionCfg, clock.RealClock{}, reg, log).Run(ctx)
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
	fs.StringVar(&tiersOpts.Config, "tiers.config", tiersOpts.Config,
		"tiers file whose retentions the retention worker applies (docs/tiers.md); empty: the built-in tiers, every tenant on Free")
	fs.DurationVar(&retentionCfg.Interval, "retention.interval", retentionCfg.Interval, "time between retention runs")
	fs.BoolVar(&retentionCfg.DryRun, "retention.dry-run", retentionCfg.DryRun,
		"log what retention would delete (rows per tenant, partitions) without deleting")
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

// serveHTTP serves /metrics, /healthz and /readyz on addr until ctx ends;
// /readyz fails while ready does.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, ready func() error) (*http.Server, error) {
	return serveHTTPChecks(ctx, addr, reg, nil, ready)
}
