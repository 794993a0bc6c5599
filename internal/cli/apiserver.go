package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/roles"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func newAPIServerCmd(g *globalOptions) *cobra.Command {
	o := roles.NewAPIServerOptions()
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	storeCfg := chstore.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the Kubernetes Events API (core/v1 and events.k8s.io/v1) from JetStream and ClickHouse",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Complete()
			if err := validate(o.Validate(), natsCfg.Validate(), streamCfg.Validate(), storeCfg.Validate()); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := roles.Connect(ctx, "eventpipe-apiserver", natsCfg, streamCfg)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.OpenStore(ctx, storeCfg); err != nil {
				return err
			}
			// The API server serves /metrics itself, from Kubernetes' registry.
			srv, err := roles.NewAPIServer(ctx, c, o, legacyregistry.Registerer(), log)
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
	fs := cmd.Flags()
	o.AddFlags(fs)
	natsCfg.AddFlags(fs)
	streamCfg.AddFlags(fs)
	storeCfg.AddFlags(fs)
	return cmd
}
