package activity

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// durable is the consumer one stage reads through, the way the writer
// reads EVENTS: the processor's on EVENTS, the indexer's on ACTIVITIES.
func (c Config) durable(js jetstream.JetStream, stream, name, filter, desc string) eventlog.Durable {
	return eventlog.Durable{JS: js, Stream: stream, Name: name, Description: desc, Filter: filter,
		AckWait: c.AckWait, MaxAckPending: 2 * c.BatchSize, BatchSize: c.BatchSize, BatchWait: c.BatchWait}
}
