package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

// Names of the JetStream objects eventpipe owns.
const (
	// StreamName is the stream that holds every event state.
	StreamName = "EVENTS"
	// DeadLetterStream holds messages the writer could not decode.
	DeadLetterStream = "EVENTS_DLQ"
	// DeadLetterSubject is the one subject of DeadLetterStream.
	DeadLetterSubject = "dlq.events"
	// StateBucket is the key-value bucket for small shared state such as the
	// writer's committed watermark.
	StateBucket = "EVENTPIPE_STATE"
)

// Config describes the EVENTS stream. It is applied (created or updated) at
// start-up by every component that publishes or consumes.
type Config struct {
	// Retention is how long a state stays in the stream after the writer has
	// committed it to ClickHouse: the window in which a watch can resume by
	// resourceVersion. A state the writer has not committed is never removed
	// for age; see MaxBytes.
	Retention time.Duration
	// MaxBytes bounds the stream. When it is full of states the writer has not
	// yet committed (a long ClickHouse outage), publishing is refused with a
	// retryable error rather than dropping anything.
	MaxBytes int64
	// DuplicateWindow is how long a Nats-Msg-Id is remembered, so that a
	// retried publish is stored once.
	DuplicateWindow time.Duration
	// Replicas is the stream's replication factor on a clustered JetStream.
	Replicas int
	// MaxMsgSize bounds one state; Kubernetes objects are far smaller.
	MaxMsgSize int32
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Retention:       time.Hour,
		MaxBytes:        8 << 30,
		DuplicateWindow: 10 * time.Minute,
		Replicas:        1,
		MaxMsgSize:      1 << 20,
	}
}

// AddFlags adds the stream's flags to fs.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.Retention, "stream.retention", c.Retention,
		"how long an event state stays in the EVENTS stream after it was written (the watch resume window); states not yet committed to ClickHouse are never expired")
	fs.Int64Var(&c.MaxBytes, "stream.max-bytes", c.MaxBytes,
		"size bound of the EVENTS stream in bytes; when it is full of uncommitted states, writes are refused (retryable) instead of dropped")
	fs.DurationVar(&c.DuplicateWindow, "stream.duplicate-window", c.DuplicateWindow,
		"how long a publish's message id is remembered so that a retried write is stored once")
	fs.IntVar(&c.Replicas, "stream.replicas", c.Replicas, "replicas of the EVENTS stream (1, 3 or 5 on a clustered JetStream)")
	fs.Int32Var(&c.MaxMsgSize, "stream.max-msg-size", c.MaxMsgSize, "largest event state in bytes")
}

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if c.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("--stream.retention must be at least 1m, got %s", c.Retention))
	}
	if c.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("--stream.max-bytes must be at least 1048576, got %d", c.MaxBytes))
	}
	if c.DuplicateWindow < time.Second || c.DuplicateWindow > c.Retention {
		errs = append(errs, fmt.Errorf("--stream.duplicate-window must be between 1s and --stream.retention (%s), got %s", c.Retention, c.DuplicateWindow))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("--stream.replicas must be 1, 3 or 5, got %d", c.Replicas))
	}
	if c.MaxMsgSize < 4096 {
		errs = append(errs, fmt.Errorf("--stream.max-msg-size must be at least 4096, got %d", c.MaxMsgSize))
	}
	return errs
}

func (c *Config) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "eventpipe: every state of every Kubernetes Event; sequence = resourceVersion",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// DiscardNew: when MaxBytes is reached, refuse the publish. DiscardOld
		// would silently drop the oldest states, which may not be written yet.
		Discard:  jetstream.DiscardNew,
		MaxBytes: c.MaxBytes,
		// No MaxAge: JetStream would expire states the writer has not committed.
		// The writer trims committed states older than Retention instead.
		MaxAge:      0,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
		MaxMsgSize:  c.MaxMsgSize,
		AllowDirect: true,
	}
}

// Ensure creates or updates the EVENTS stream, the dead-letter stream and the
// state bucket so that they match c. It is safe to call from every component
// at start-up.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if _, err := EnsureStream(ctx, js, c.streamConfig()); err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, ReplicasError(err, c.Replicas))
	}
	if _, err := EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "eventpipe: messages the writer could not decode, with the reason",
		Subjects:    []string{DeadLetterSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      14 * 24 * time.Hour,
		MaxBytes:    1 << 30,
		Replicas:    c.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", DeadLetterStream, err)
	}
	if _, err := EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "eventpipe: shared state (writer watermark, checkpoints)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure key-value bucket %s: %w", StateBucket, err)
	}
	return nil
}

// JetStream's answers when a stream asks for more replicas than the
// servers can place.
const (
	errCodeReplicasNotSupported jetstream.ErrorCode = 10074 // a single server
	errCodeNoSuitablePeers      jetstream.ErrorCode = 10005 // too few servers (with room)
	errCodeInsufficientRes      jetstream.ErrorCode = 10023
)

// ReplicasError turns JetStream's refusal to place a stream with replicas
// copies into an error that names --stream.replicas and what to do; other
// errors are returned as they are.
func ReplicasError(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.ErrorCode {
	case errCodeReplicasNotSupported:
		return fmt.Errorf("--stream.replicas %d needs a clustered JetStream, and the server at --nats.url is a single server: "+
			"use --stream.replicas 1, or point --nats.url at a cluster of at least %d JetStream servers (%w)", replicas, replicas, err)
	case errCodeNoSuitablePeers, errCodeInsufficientRes:
		return fmt.Errorf("--stream.replicas %d: the JetStream cluster has fewer than %d servers online with room for the stream: "+
			"start the missing servers, add servers (or storage: max_file_store), or lower --stream.replicas (%w)", replicas, replicas, err)
	}
	return err
}

// IsRetryable reports whether a publish error is transient: the stream is
// full, JetStream is unavailable, or the request timed out. The API maps these
// to 503 with Retry-After.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: unavailable; JetStream reports a full stream with 503 too
		// ("maximum bytes exceeded" under DiscardNew).
		return apiErr.Code == 503 || apiErr.Code == 0
	}
	// Disconnected: the client is reconnecting (to another node of a
	// cluster, say); the publish was not sent.
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrDisconnected)
}
