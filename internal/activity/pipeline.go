package activity

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Pipeline is the activity pipeline running in this process: the
// processor (EVENTS -> ACTIVITIES) and the indexer (ACTIVITIES ->
// ClickHouse), following the stored policies.
type Pipeline struct {
	// Policies is the policy bucket the pipeline follows.
	Policies *PolicyStore
	// Indexer publishes the activity watermark.
	Indexer *Indexer
	// Done receives the result of the processor and of the indexer as each
	// ends (nil when ctx ended), wrapped with its name.
	Done <-chan error
}

// Start runs the pipeline until ctx ends: it ensures the ACTIVITIES
// stream, installs the built-in policies that are absent (when
// installBuiltins), starts following the policies, and runs the processor
// and the indexer. `eventpipe activity-processor` and dev mode both run it.
func Start(ctx context.Context, js jetstream.JetStream, store Inserter, cfg Config, installBuiltins bool,
	reg prometheus.Registerer, log *slog.Logger) (*Pipeline, error) {
	if err := Ensure(ctx, js, cfg.Stream); err != nil {
		return nil, err
	}
	policies, err := NewPolicyStore(ctx, js)
	if err != nil {
		return nil, err
	}
	if installBuiltins {
		created, err := InstallBuiltins(ctx, policies)
		if err != nil {
			return nil, fmt.Errorf("install built-in activity policies: %w", err)
		}
		if len(created) > 0 {
			log.Info("installed built-in activity policies", "policies", created)
		}
	}
	engine := NewEngine()
	if err := Follow(ctx, policies, engine, reg, log); err != nil {
		return nil, err
	}
	m := NewMetrics(reg)
	idx := NewIndexer(js, store, cfg, m, log)
	proc := NewProcessor(js, engine, cfg, m, log)
	done := make(chan error, 2)
	run := func(name string, f func(context.Context) error) {
		if err := f(ctx); err != nil {
			done <- fmt.Errorf("%s: %w", name, err)
			return
		}
		done <- nil
	}
	go run("activity indexer", idx.Run)
	go run("activity processor", proc.Run)
	return &Pipeline{Policies: policies, Indexer: idx, Done: done}, nil
}
