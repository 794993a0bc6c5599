package cli

import (
	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/roles"
)

func newEtcdCmd(g *globalOptions) *cobra.Command {
	conn := newConnFlags(true)
	o := roles.DefaultEtcdOptions()
	metricsAddr := ":9466"
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Serve the etcd v3 API for kube-apiserver's Events (--etcd-servers-overrides=/events#…)",
		Long: "Runs the etcd front: kube-apiserver stores its Events here instead of in etcd, with\n" +
			"--etcd-servers-overrides=/events#https://HOST:2379. Events go into the JetStream log and\n" +
			"ClickHouse like every other write; kube-apiserver keeps serving /api/v1/events and events.k8s.io.\n" +
			"See docs/etcd.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, log, err := conn.start(ctx, g, "eventpipe-etcd", o.Validate(), validateAddr(metricsAddr))
			if err != nil {
				return err
			}
			defer c.Close()
			reg := newRegistry()
			e, err := roles.NewEtcd(ctx, c, o, reg, log)
			if err != nil {
				return err
			}
			srv, err := serveHTTP(ctx, metricsAddr, reg, c.NATSReady)
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("etcd front serving", "addr", e.Addr(), "metrics", srv.Addr)
			return e.Run(ctx)
		},
	}
	fs := cmd.Flags()
	conn.AddFlags(fs)
	o.AddFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	return cmd
}
