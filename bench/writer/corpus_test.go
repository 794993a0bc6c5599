package writerbench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventpipe/eventpipe/bench/internal/fleet"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/generator"
)

// corpus is a run's event states, encoded as the API server publishes them.
type corpus struct {
	msgs      []*nats.Msg
	ids       []string // each message's Nats-Msg-Id
	bodyBytes int64    // protobuf bodies: what the stream and the writer carry
	jsonBytes int64    // the same events as Kubernetes JSON
}

// clockStep is the simulated time between two states: 500,000 states make a
// day, about 6 per second over the 20 tenants, so that timestamps, repeats
// and day partitions look like a day of real traffic.
const clockStep = 24 * time.Hour / 500_000

// corpusStart is when the simulated day starts. It crosses midnight, so the
// table has two day partitions, as a table that keeps history has many.
var corpusStart = time.Date(2026, time.March, 2, 6, 0, 0, 0, time.UTC)

// buildCorpus generates n states with a fixed seed, so that every run
// publishes the same bytes.
func buildCorpus(n int) (*corpus, error) {
	now := corpusStart
	g, err := generator.New(generator.Config{
		Tenants: fleet.Tenants(),
		Seed:    2,
		Now:     func() time.Time { now = now.Add(clockStep); return now },
	})
	if err != nil {
		return nil, fmt.Errorf("build corpus: %w", err)
	}
	c := &corpus{msgs: make([]*nats.Msg, 0, n), ids: make([]string, 0, n)}
	for i := range n {
		op, sc, ev := g.Next()
		j, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("build corpus: %w", err)
		}
		c.jsonBytes += int64(len(j))
		m, err := eventlog.EncodeMsg(&eventlog.Record{
			Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev,
		})
		if err != nil {
			return nil, fmt.Errorf("build corpus: %w", err)
		}
		c.bodyBytes += int64(len(m.Data))
		c.msgs = append(c.msgs, m)
		// Unique per state, like an API server's id for one write; the
		// index keeps a delete (which repeats its event's last state) apart
		// from that state.
		c.ids = append(c.ids, fmt.Sprintf("%s/%d", ev.UID, i))
	}
	return c, nil
}
