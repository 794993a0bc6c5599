package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/eventpipe/eventpipe/internal/roles"
)

func newAPIServerCmd(g *globalOptions) *cobra.Command {
	o := roles.NewAPIServerOptions()
	conn := newConnFlags(true)
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the Kubernetes Events API (core/v1 and events.k8s.io/v1) from JetStream and ClickHouse",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Complete()
			ctx := cmd.Context()
			c, log, err := conn.start(ctx, g, "eventpipe-apiserver", o.Validate())
			if err != nil {
				return err
			}
			defer c.Close()
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
	conn.AddFlags(fs)
	return cmd
}
