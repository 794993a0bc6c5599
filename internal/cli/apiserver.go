package cli

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

func newAPIServerCmd(g *globalOptions) *cobra.Command {
	o := apiserver.NewOptions()
	natsCfg := eventlog.DefaultClientConfig()
	streamCfg := eventlog.DefaultConfig()
	storeCfg := chstore.DefaultConfig()
	migrate := true
	tiersOpts := apiserver.TiersOptions{Replicas: 1}
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Serve the Kubernetes Events API (core/v1 and events.k8s.io/v1) from JetStream and ClickHouse",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validate(o.Validate(), natsCfg.Validate(), streamCfg.Validate(), storeCfg.Validate(), tiersOpts.Validate()); err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := openBackends(ctx, "eventpipe-apiserver", natsCfg, streamCfg, storeCfg, migrate)
			if err != nil {
				return err
			}
			defer b.close()
			js, store := b.js, b.store
			reader, err := eventlog.NewReader(ctx, js)
			if err != nil {
				return err
			}
			wm, err := eventlog.WatchWatermark(ctx, js)
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			tiers, err := tiersOpts.NewTiers(ctx, js, store, wm.Load, legacyregistry.Registerer(), log)
			if err != nil {
				return err
			}
			tiers.Run(ctx)
			act, err := activityBackends(ctx, js, store)
			if err != nil {
				return err
			}
			cfg, err := o.Config(apiserver.Backends{
				Log:   event.LogReaderPublisher{Reader: reader, Publisher: eventlog.NewPublisher(js), Watches: watchtail.NewSource(ctx, reader, log)},
				Index: event.ClickHouseIndex{Store: store}, Watermark: wm, Tiers: tiers, Activity: act,
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
	tiersOpts.AddFlags(fs)
	return cmd
}

// activityBackends opens what the API server reads and writes for the
// activity resources: the ACTIVITIES stream (created if absent), the
// policy bucket, and the indexer's watermark. The processor and the indexer
// themselves run in `eventpipe activity-processor`.
func activityBackends(ctx context.Context, js jetstream.JetStream, store *chstore.Store) (*apiserver.ActivityBackends, error) {
	cfg := activity.DefaultConfig()
	if err := activity.Ensure(ctx, js, cfg.Stream); err != nil {
		return nil, err
	}
	policies, err := activity.NewPolicyStore(ctx, js)
	if err != nil {
		return nil, err
	}
	reader, err := activity.NewReader(ctx, js)
	if err != nil {
		return nil, err
	}
	wm, err := activity.WatchWatermark(ctx, js)
	if err != nil {
		return nil, err
	}
	return &apiserver.ActivityBackends{Log: reader, Index: store, Watermark: wm, Policies: policies}, nil
}
