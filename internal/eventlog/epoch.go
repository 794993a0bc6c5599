package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamEpochKey is the key in StateBucket that records when the EVENTS
// stream whose sequences eventpipe counts was created (JetStream's stream
// info Created, RFC 3339 with nanoseconds). Every resourceVersion served,
// every watermark and every seq in ClickHouse is a sequence of that
// stream. If EVENTS is deleted and created again, its sequence starts
// over at 1 and the same numbers would name other states: the stream's
// creation time changes, and comparing it with this record is how every
// component notices.
const StreamEpochKey = "events.created"

// ErrStreamRecreated is returned when EVENTS is not the stream eventpipe's
// sequences belong to.
var ErrStreamRecreated = errors.New("the EVENTS stream was deleted and created again")

// CheckEpoch compares EVENTS' creation time with the one recorded in the
// state bucket, recording it on first use, and returns it. When they
// differ it returns an error wrapping ErrStreamRecreated that says what
// happened and what to do: the index, the watermarks and every client's
// resourceVersions count the old stream's sequences, and serving the new
// stream beside them would give resourceVersions from two histories.
func CheckEpoch(ctx context.Context, js jetstream.JetStream) (time.Time, error) {
	created, err := streamCreated(ctx, js)
	if err != nil {
		return time.Time{}, err
	}
	kv, err := js.KeyValue(ctx, StateBucket)
	if err != nil {
		return time.Time{}, fmt.Errorf("open bucket %s: %w", StateBucket, err)
	}
	have := created.UTC().Format(time.RFC3339Nano)
	e, err := kv.Get(ctx, StreamEpochKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// First start on this stream (or an upgrade from a version that
		// did not record it): this stream is the one.
		if _, err := kv.Create(ctx, StreamEpochKey, []byte(have)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return time.Time{}, fmt.Errorf("record %s in bucket %s: %w", StreamEpochKey, StateBucket, err)
		}
		if e, err = kv.Get(ctx, StreamEpochKey); err != nil {
			return time.Time{}, fmt.Errorf("read %s from bucket %s: %w", StreamEpochKey, StateBucket, err)
		}
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read %s from bucket %s: %w", StreamEpochKey, StateBucket, err)
	}
	if want := string(e.Value()); want != have {
		return time.Time{}, recreatedError(want, have)
	}
	return created, nil
}

func recreatedError(want, have string) error {
	return fmt.Errorf("%w: it was created at %s, but eventpipe's index, watermarks and clients' resourceVersions count the sequences "+
		"of the EVENTS created at %s (bucket %s, key %s). Its sequences started over, so the same resourceVersions would name "+
		"other states; eventpipe refuses to serve or index it. Restore the old stream, or move the new one past the old history "+
		"and record it (docs/high-availability.md, \"The EVENTS stream was recreated\")",
		ErrStreamRecreated, have, want, StateBucket, StreamEpochKey)
}

// streamCreated is EVENTS' creation time.
func streamCreated(ctx context.Context, js jetstream.JetStream) (time.Time, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return time.Time{}, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	return s.CachedInfo().Created, nil
}

// GuardEpoch checks every interval, until ctx ends, that EVENTS is still the
// stream created at epoch, and returns an error wrapping
// ErrStreamRecreated as soon as it is not (or is gone for longer than
// interval·5: deleted, and perhaps about to be created again). Errors
// reaching JetStream are only logged: an unreachable server is not a
// recreated stream. A process that serves sequences (API server, etcd
// front) stops on its error, since its watch tail and caches would
// otherwise go on from the old sequences into the new stream's.
func GuardEpoch(ctx context.Context, js jetstream.JetStream, epoch time.Time, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var goneSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		created, err := streamCreated(ctx, js)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if goneSince.IsZero() {
				goneSince = time.Now()
				log.Error("the EVENTS stream is gone", "stream", StreamName)
			}
			if time.Since(goneSince) > 5*interval {
				return fmt.Errorf("%w: it was deleted (created at %s)", ErrStreamRecreated, epoch.UTC().Format(time.RFC3339Nano))
			}
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("cannot check the EVENTS stream", "err", err)
			}
		case !created.Equal(epoch):
			return recreatedError(epoch.UTC().Format(time.RFC3339Nano), created.UTC().Format(time.RFC3339Nano))
		default:
			goneSince = time.Time{}
		}
	}
}
