package eventlog

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// groupCommit sends the publishes that concurrent callers make at the same
// time together: one goroutine hands a batch to the NATS connection back to
// back and then waits for their acknowledgements, while the next batch
// gathers. Each publish is still its own message, with its own checks and
// its own acknowledgement, and each caller still waits for its own; what
// the batch shares is the connection's writes and reads, and the wake-ups
// of the goroutines on both ends, which lowers JetStream's CPU per create
// when many API requests publish at once (bench/README.md, "Group commit").
// A lone publish goes out at once.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*pendingPub
	running bool
}

// publishTimeout bounds a publish whose context has no deadline, as
// jetstream's default timeout does for js.PublishMsg.
const publishTimeout = 5 * time.Second

// groupCommitMax is the most publishes one batch hands to the connection
// before it waits for their acknowledgements.
const groupCommitMax = 256

type pendingPub struct {
	ctx  context.Context
	m    *nats.Msg
	opts []jetstream.PublishOpt
	done chan pubResult // buffered: the batch never waits for its caller
}

type pubResult struct {
	ack *jetstream.PubAck
	err error
}

// publish stores m as js.PublishMsg would, returning when its
// acknowledgement came or ctx ended. A publish whose caller gave up before
// its batch went out is not sent.
func (g *groupCommit) publish(ctx context.Context, js jetstream.JetStream, m *nats.Msg, opts []jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		// As js.PublishMsg does: an acknowledgement is not waited for
		// for ever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	p := &pendingPub{ctx: ctx, m: m, opts: opts, done: make(chan pubResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.run(js)
	}
	select {
	case r := <-p.done:
		return r.ack, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends batches until the queue is empty, then ends; the next publish
// starts it again.
func (g *groupCommit) run(js jetstream.JetStream) {
	type inFlight struct {
		p   *pendingPub
		fut jetstream.PubAckFuture
	}
	var sent []inFlight
	for {
		g.mu.Lock()
		n := min(len(g.queue), groupCommitMax)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		batch := make([]*pendingPub, n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()

		sent = sent[:0]
		for _, p := range batch {
			if err := p.ctx.Err(); err != nil {
				p.done <- pubResult{err: err}
				continue
			}
			fut, err := js.PublishMsgAsync(p.m, p.opts...)
			if err != nil {
				p.done <- pubResult{err: err}
				continue
			}
			sent = append(sent, inFlight{p, fut})
		}
		for _, s := range sent {
			select {
			case ack := <-s.fut.Ok():
				s.p.done <- pubResult{ack: ack}
			case err := <-s.fut.Err():
				s.p.done <- pubResult{err: err}
			case <-s.p.ctx.Done():
				// Its caller has gone; the acknowledgement, if it comes, is
				// dropped with the future.
				s.p.done <- pubResult{err: s.p.ctx.Err()}
			}
		}
	}
}
