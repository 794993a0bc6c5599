package activity

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// Reader reads Activity states back from the ACTIVITIES stream: the newest
// state of one Activity and ordered tails for watches, exactly as
// eventlog.Reader reads EVENTS.
type Reader = eventlog.StreamReader[*State]

// Tail is an ordered feed of Activity states.
type Tail = eventlog.StreamTail[*State]

// NewReader opens the ACTIVITIES stream (Ensure creates it).
func NewReader(ctx context.Context, js jetstream.JetStream) (*Reader, error) {
	return eventlog.OpenStreamReader(ctx, js, StreamName, Decode)
}
