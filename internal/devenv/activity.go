package devenv

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/apiserver"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// startActivity runs the activity pipeline in process: it installs the
// built-in ActivityPolicies that are absent, follows the stored policies,
// and runs the processor (EVENTS -> ACTIVITIES) and the indexer
// (ACTIVITIES -> ClickHouse) until ctx ends, reporting a failure on errc.
// It returns what the API server needs to serve the activity resources.
func startActivity(ctx context.Context, js jetstream.JetStream, store *chstore.Store, reg prometheus.Registerer,
	log *slog.Logger, errc chan<- error) (*apiserver.ActivityBackends, error) {
	cfg := activity.DefaultConfig()
	if err := activity.Ensure(ctx, js, cfg.Stream); err != nil {
		return nil, err
	}
	policies, err := activity.NewPolicyStore(ctx, js)
	if err != nil {
		return nil, err
	}
	created, err := activity.InstallBuiltins(ctx, policies)
	if err != nil {
		return nil, fmt.Errorf("install built-in activity policies: %w", err)
	}
	if len(created) > 0 {
		log.Info("installed built-in activity policies", "policies", created)
	}
	engine := activity.NewEngine()
	if err := activity.Follow(ctx, policies, engine, reg, log); err != nil {
		return nil, err
	}
	m := activity.NewMetrics(reg)
	proc := activity.NewProcessor(js, engine, cfg, m, log)
	idx := activity.NewIndexer(js, store, cfg, m, log)
	report := func(name string, err error) {
		if err == nil || ctx.Err() != nil {
			return
		}
		select {
		case errc <- fmt.Errorf("%s: %w", name, err):
		case <-ctx.Done():
		}
	}
	go func() { report("activity processor", proc.Run(ctx)) }()
	go func() { report("activity indexer", idx.Run(ctx)) }()
	reader, err := activity.NewReader(ctx, js)
	if err != nil {
		return nil, err
	}
	return &apiserver.ActivityBackends{Log: reader, Index: store, Watermark: idx.Watermark(), Policies: policies}, nil
}
