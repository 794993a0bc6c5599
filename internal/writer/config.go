package writer

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// Config tunes the writer.
type Config struct {
	// BatchSize is the most rows one insert carries.
	BatchSize int
	// BatchWait is the longest a state waits for its batch to fill.
	BatchWait time.Duration
	// Consumer is the durable consumer's name.
	Consumer string
	// RetryMax caps the backoff between insert attempts while ClickHouse is
	// unavailable.
	RetryMax time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before it
	// redelivers; the writer renews it while it retries an insert.
	AckWait time.Duration
	// TrimInterval is how often committed states older than the log's
	// retention are purged from the stream.
	TrimInterval time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		BatchSize:    10000,
		BatchWait:    500 * time.Millisecond,
		Consumer:     "eventpipe-writer",
		RetryMax:     10 * time.Second,
		AckWait:      time.Minute,
		TrimInterval: 30 * time.Second,
	}
}

// AddFlags adds the writer's flags to fs.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.BatchSize, "writer.batch-size", c.BatchSize, "most event states in one ClickHouse insert")
	fs.DurationVar(&c.BatchWait, "writer.batch-wait", c.BatchWait, "longest an event state waits for its batch to fill before it is inserted")
	fs.StringVar(&c.Consumer, "writer.consumer", c.Consumer, "name of the writer's durable JetStream consumer")
	fs.DurationVar(&c.RetryMax, "writer.retry-max", c.RetryMax, "longest pause between insert attempts while ClickHouse is unavailable")
	fs.DurationVar(&c.AckWait, "writer.ack-wait", c.AckWait, "JetStream redelivery timeout for unacknowledged states (renewed while retrying)")
	fs.DurationVar(&c.TrimInterval, "writer.trim-interval", c.TrimInterval, "how often committed states older than --stream.retention are purged from the stream")
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("--writer.batch-size must be between 1 and 1000000, got %d", c.BatchSize))
	}
	if c.BatchWait < time.Millisecond {
		errs = append(errs, fmt.Errorf("--writer.batch-wait must be at least 1ms, got %s", c.BatchWait))
	}
	if c.Consumer == "" {
		errs = append(errs, fmt.Errorf("--writer.consumer must not be empty"))
	}
	if c.RetryMax < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--writer.retry-max must be at least 10ms, got %s", c.RetryMax))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("--writer.ack-wait must be at least 1s, got %s", c.AckWait))
	}
	if c.AckWait <= c.BatchWait {
		errs = append(errs, fmt.Errorf("--writer.ack-wait (%s) must be longer than --writer.batch-wait (%s)", c.AckWait, c.BatchWait))
	}
	if c.TrimInterval < time.Second {
		errs = append(errs, fmt.Errorf("--writer.trim-interval must be at least 1s, got %s", c.TrimInterval))
	}
	return errs
}
