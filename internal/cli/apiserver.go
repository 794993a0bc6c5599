package cli

import (
	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func newAPIServerCmd(g *globalOptions) *cobra.Command {
	o := apiserver.NewOptions()
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	storeCfg := chstore.DefaultConfig()
	migrate := true
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the Kubernetes Events API (core/v1 and events.k8s.io/v1) from JetStream and ClickHouse",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validate(o.Validate(), natsCfg.Validate(), streamCfg.Validate(), storeCfg.Validate()); err != nil {
				return err
			}
			ctx := cmd.Context()
			natsCfg.Name = "eventpipe-apiserver"
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
			reader, err := eventlog.NewReader(ctx, js)
			if err != nil {
				return err
			}
			wm, err := eventlog.WatchWatermark(ctx, js)
			if err != nil {
				return err
			}
			cfg, err := o.Config(apiserver.Backends{
				Log:   event.LogReaderPublisher{Reader: reader, Publisher: eventlog.NewPublisher(js)},
				Index: store, Watermark: wm,
			})
			if err != nil {
				return err
			}
			srv, err := cfg.Complete().New()
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
	fs := cmd.Flags()
	o.AddFlags(fs)
	natsCfg.RegisterFlags(fs)
	streamCfg.RegisterFlags(fs)
	storeCfg.RegisterFlags(fs)
	fs.BoolVar(&migrate, "clickhouse.migrate", migrate, "apply pending schema migrations at start-up")
	return cmd
}
