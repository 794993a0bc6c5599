package exporter

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// checkpoints keeps resume points in the EVENTPIPE_STATE bucket, one key
// per watched namespace selection of one source cluster.
type checkpoints struct {
	kv jetstream.KeyValue
}

func openCheckpoints(ctx context.Context, js jetstream.JetStream) (*checkpoints, error) {
	kv, err := js.KeyValue(ctx, eventlog.StateBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", eventlog.StateBucket, err)
	}
	return &checkpoints{kv: kv}, nil
}

// CheckpointKey is the key of a resume point: cluster is --exporter.cluster-name,
// namespace the watched namespace, empty for all of them.
func CheckpointKey(cluster, namespace string) string {
	if namespace == "" {
		return "exporter." + cluster + ".all"
	}
	return "exporter." + cluster + ".ns." + namespace
}

// load returns the stored resume point, "" when there is none.
func (c *checkpoints) load(ctx context.Context, key string) (string, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	rv := string(e.Value())
	if _, err := ParseResourceVersion(rv); err != nil {
		return "", fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	return rv, nil
}

// store advances the resume point to rv. It never moves it back: a
// replica that lost its lease a moment ago may still hold an older value,
// and writing it would make the next leader publish again what is already
// stored (harmless within the duplicate window, but wasted) or, worse
// beyond it, stale states on top of newer ones. The compare-and-swap on the
// key's revision makes the check and the write one step.
func (c *checkpoints) store(ctx context.Context, key, rv string) error {
	want, err := ParseResourceVersion(rv)
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", key, err)
	}
	for {
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = c.kv.Create(ctx, key, []byte(rv))
		case err != nil:
			return fmt.Errorf("write checkpoint %s: %w", key, err)
		default:
			if have, perr := ParseResourceVersion(string(e.Value())); perr == nil && have >= want {
				return nil
			}
			_, err = c.kv.Update(ctx, key, []byte(rv), e.Revision())
		}
		if err == nil {
			return nil
		}
		if eventlog.IsWrongLastSequence(err) {
			continue // someone else wrote in between: compare again
		}
		return fmt.Errorf("write checkpoint %s: %w", key, err)
	}
}
