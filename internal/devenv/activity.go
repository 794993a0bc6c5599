package devenv

import (
	"context"
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
	p, err := activity.Start(ctx, js, store, activity.DefaultConfig(), true, reg, log)
	if err != nil {
		return nil, err
	}
	go func() {
		for range 2 {
			if err := <-p.Done; err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				case <-ctx.Done():
				}
			}
		}
	}()
	reader, err := activity.NewReader(ctx, js)
	if err != nil {
		return nil, err
	}
	return &apiserver.ActivityBackends{Log: reader, Index: store, Watermark: p.Indexer.Watermark(), Policies: p.Policies}, nil
}
