package roles

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/internal/activity"
)

// ActivityProcessorOptions configure the activity processor role.
type ActivityProcessorOptions struct {
	Activity activity.Config
	// InstallBuiltins creates the built-in ActivityPolicies that do not
	// exist yet.
	InstallBuiltins bool
}

// DefaultActivityProcessorOptions returns the documented defaults.
func DefaultActivityProcessorOptions() ActivityProcessorOptions {
	return ActivityProcessorOptions{Activity: activity.DefaultConfig(), InstallBuiltins: true}
}

// AddFlags registers the options on fs.
func (o *ActivityProcessorOptions) AddFlags(fs *pflag.FlagSet) {
	o.Activity.AddFlags(fs)
	fs.BoolVar(&o.InstallBuiltins, "activity.install-builtins", o.InstallBuiltins,
		"create the built-in ActivityPolicies that do not exist yet (existing ones, edited or not, are left alone)")
}

// Validate returns every problem with o.
func (o *ActivityProcessorOptions) Validate() []error { return o.Activity.Validate() }

// ActivityProcessor is the activity processor role: the processor (EVENTS
// -> ACTIVITIES, through the policies) and the indexer (ACTIVITIES ->
// ClickHouse, publishing the activity watermark).
type ActivityProcessor struct {
	p *activity.Pipeline
}

// NewActivityProcessor starts the pipeline on c, whose store must be open;
// it runs until ctx ends. reg receives its metrics.
func NewActivityProcessor(ctx context.Context, c *Conns, o ActivityProcessorOptions, reg prometheus.Registerer,
	log *slog.Logger) (*ActivityProcessor, error) {
	if err := joinErrors(o.Validate()); err != nil {
		return nil, err
	}
	p, err := activity.Start(ctx, c.JS, c.Store, o.Activity, o.InstallBuiltins, reg, log)
	if err != nil {
		return nil, err
	}
	return &ActivityProcessor{p: p}, nil
}

// Run waits until the processor and the indexer have both stopped with the
// context given to NewActivityProcessor, and returns nil; or until either
// fails, and returns its error (the other stops with that context).
func (a *ActivityProcessor) Run(context.Context) error {
	for range 2 {
		if err := <-a.p.Done; err != nil {
			return err
		}
	}
	return nil
}
