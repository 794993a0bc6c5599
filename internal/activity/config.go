package activity

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Config tunes the processor and the indexer.
type Config struct {
	// Consumer is the processor's durable consumer on EVENTS, and its
	// consumer of the same name on AUDIT.
	Consumer string
	// IndexerConsumer is the indexer's durable consumer on ACTIVITIES.
	IndexerConsumer string
	// BatchSize is the most states handled per round.
	BatchSize int
	// BatchWait is the longest a state waits for its batch to fill.
	BatchWait time.Duration
	// AckWait is JetStream's redelivery timeout.
	AckWait time.Duration
	// TrimInterval is how often indexed states older than the stream's
	// retention are purged from ACTIVITIES.
	TrimInterval time.Duration
	Stream       StreamConfig
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Consumer: "eventpipe-activity", IndexerConsumer: "eventpipe-activity-indexer", BatchSize: 2000,
		BatchWait: 100 * time.Millisecond, AckWait: time.Minute, TrimInterval: 30 * time.Second, Stream: DefaultStreamConfig()}
}

// AddFlags adds the flags to fs.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Consumer, "activity.consumer", c.Consumer, "name of the activity processor's durable consumer on EVENTS")
	fs.StringVar(&c.IndexerConsumer, "activity.indexer-consumer", c.IndexerConsumer, "name of the activity indexer's durable consumer on ACTIVITIES")
	fs.IntVar(&c.BatchSize, "activity.batch-size", c.BatchSize, "most event states evaluated (and activity states inserted) per batch")
	fs.DurationVar(&c.BatchWait, "activity.batch-wait", c.BatchWait, "longest a state waits for its batch to fill")
	fs.DurationVar(&c.AckWait, "activity.ack-wait", c.AckWait, "JetStream redelivery timeout for unacknowledged states")
	fs.DurationVar(&c.TrimInterval, "activity.trim-interval", c.TrimInterval, "how often indexed activity states older than --activity.stream-retention are purged")
	fs.DurationVar(&c.Stream.Retention, "activity.stream-retention", c.Stream.Retention, "how long an activity state stays in the ACTIVITIES stream after it was indexed (the watch resume window)")
	fs.Int64Var(&c.Stream.MaxBytes, "activity.stream-max-bytes", c.Stream.MaxBytes, "size bound of the ACTIVITIES stream in bytes")
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if c.Consumer == "" || c.IndexerConsumer == "" || c.Consumer == c.IndexerConsumer {
		errs = append(errs, fmt.Errorf("--activity.consumer and --activity.indexer-consumer must be set and differ, got %q and %q", c.Consumer, c.IndexerConsumer))
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		errs = append(errs, fmt.Errorf("--activity.batch-size must be between 1 and 100000, got %d", c.BatchSize))
	}
	if c.BatchWait < time.Millisecond {
		errs = append(errs, fmt.Errorf("--activity.batch-wait must be at least 1ms, got %s", c.BatchWait))
	}
	if c.AckWait < time.Second || c.AckWait <= c.BatchWait {
		errs = append(errs, fmt.Errorf("--activity.ack-wait must be at least 1s and longer than --activity.batch-wait, got %s", c.AckWait))
	}
	if c.TrimInterval < time.Second {
		errs = append(errs, fmt.Errorf("--activity.trim-interval must be at least 1s, got %s", c.TrimInterval))
	}
	if c.Stream.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("--activity.stream-retention must be at least 1m, got %s", c.Stream.Retention))
	}
	if c.Stream.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("--activity.stream-max-bytes must be at least 1048576, got %d", c.Stream.MaxBytes))
	}
	return errs
}
