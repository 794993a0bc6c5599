package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/roles"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func newActivityProcessorCmd(g *globalOptions) *cobra.Command {
	conn := newConnFlags(true)
	o := roles.DefaultActivityProcessorOptions()
	metricsAddr := ":9465"
	cmd := &cobra.Command{
		Use:   "activity-processor",
		Short: "Turn events into human-readable Activities (EVENTS -> ACTIVITIES -> ClickHouse)",
		Long: "Runs the activity processor, a durable consumer on EVENTS that evaluates the ActivityPolicies\n" +
			"and publishes one Activity per event into the ACTIVITIES stream, and the activity indexer,\n" +
			"which moves Activities into ClickHouse and publishes the activity watermark. Run exactly one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, log, err := conn.start(ctx, g, "eventpipe-activity-processor", o.Validate(), validateAddr(metricsAddr))
			if err != nil {
				return err
			}
			defer c.Close()
			reg := newRegistry()
			p, err := roles.NewActivityProcessor(ctx, c, o, reg, log)
			if err != nil {
				return err
			}
			srv, err := serveHTTP(ctx, metricsAddr, reg, c.NATSReady)
			if err != nil {
				return err
			}
			defer srv.Close()
			return p.Run(ctx)
		},
	}
	fs := cmd.Flags()
	conn.AddFlags(fs)
	o.AddFlags(fs)
	fs.StringVar(&metricsAddr, "metrics.addr", metricsAddr, "address for /metrics, /healthz and /readyz")
	return cmd
}

func newActivitiesCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "activities", Short: "Maintain Activities", Args: cobra.NoArgs}
	natsCfg := eventlog.DefaultClientConfig()
	storeCfg := chstore.DefaultConfig()
	cfg := activity.DefaultConfig()
	since := 7 * 24 * time.Hour
	reindex := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the Activities of stored events with the current policies",
		Long: "Reads the latest state of every event last observed within --since from ClickHouse, evaluates\n" +
			"the current ActivityPolicies and publishes the resulting Activities (the indexer stores them).\n" +
			"Safe beside a running activity processor: newer live states win.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if since <= 0 {
				errs = append(errs, fmt.Errorf("--since must be positive, e.g. 7d or 36h, got %s", since))
			}
			if err := validate(natsCfg.Validate(), storeCfg.Validate(), errs); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			natsCfg.Name = "eventpipe-activities-reindex"
			nc, js, err := natsCfg.Connect()
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := activity.Ensure(ctx, js, cfg.Stream); err != nil {
				return err
			}
			store, err := chstore.Open(ctx, storeCfg)
			if err != nil {
				return err
			}
			defer store.Close()
			policies, err := activity.NewPolicyStore(ctx, js)
			if err != nil {
				return err
			}
			engine := activity.NewEngine()
			if err := activity.Follow(ctx, policies, engine, nil, log); err != nil {
				return err
			}
			res, err := activity.Reindex(ctx, js, store, engine.Set(), time.Now().Add(-since), log)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "reindexed %d events: %d activities published, %d skipped (a newer live state exists)\n",
				res.Events, res.Published, res.Skipped)
			return nil
		},
	}
	fs := reindex.Flags()
	natsCfg.AddFlags(fs)
	storeCfg.AddFlags(fs)
	// Reindexing reads the store as it is and never migrates it.
	_ = fs.MarkHidden("clickhouse.migrate")
	fs.Var((*dayDuration)(&since), "since", "rebuild events last observed within this long ago: a Go duration (36h) or days (7d)")
	cmd.AddCommand(reindex)
	return cmd
}

// dayDuration is a duration flag that also takes whole days ("7d").
type dayDuration time.Duration

func (d *dayDuration) String() string { return time.Duration(*d).String() }
func (d *dayDuration) Type() string   { return "duration" }
func (d *dayDuration) Set(s string) error {
	var days int
	if n, err := fmt.Sscanf(s, "%dd", &days); err == nil && n == 1 && fmt.Sprintf("%dd", days) == s {
		if days <= 0 || days > 3650 {
			return fmt.Errorf("days must be between 1 and 3650, got %d", days)
		}
		*d = dayDuration(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 36h or a number of days such as 7d")
	}
	*d = dayDuration(v)
	return nil
}
