package eventlog

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// TestPublishStoresAResentStateOnce: each of the two guards a publisher may
// use, a message id or an expected last sequence, keeps a second copy of the
// same publish out of the stream; without either, Publish refuses.
func TestPublishStoresAResentStateOnce(t *testing.T) {
	ns := eventsStream(t)
	ctx := context.Background()
	pub := NewPublisher(ns.JS)
	rec := func(name string) *Record { return createOf("web", name) }

	first, err := pub.Publish(ctx, rec("by-id"), PublishOptions{MsgID: "by-id/1"})
	require.NoError(t, err)
	again, err := pub.Publish(ctx, rec("by-id"), PublishOptions{MsgID: "by-id/1"})
	require.NoError(t, err)
	require.Equal(t, first, again, "a resent id is acknowledged with the first store's sequence")

	none := uint64(0)
	seq, err := pub.Publish(ctx, rec("by-seq"), PublishOptions{ExpectLastSeq: &none})
	require.NoError(t, err)
	require.Greater(t, seq, first)
	_, err = pub.Publish(ctx, rec("by-seq"), PublishOptions{ExpectLastSeq: &none})
	require.ErrorIs(t, err, ErrConflict, "the resent copy finds the first on its subject")

	_, err = pub.Publish(ctx, rec("unguarded"), PublishOptions{})
	require.ErrorContains(t, err, "a message id or an expected last sequence is required")

	require.Equal(t, uint64(2), storedStates(t, ns), "one message per distinct state")
}

// TestGroupCommitKeepsEachPublishsOwnOutcome: publishes made at the same
// time go out in batches, but each keeps its own checks and its own answer:
// distinct new events all get stored, each under a sequence of its own, and
// of many creates of one new event exactly one wins and the rest conflict.
func TestGroupCommitKeepsEachPublishsOwnOutcome(t *testing.T) {
	ns := eventsStream(t)
	ctx := context.Background()
	pub := NewPublisher(ns.JS)
	rec := func(name string) *Record { return createOf("web", name) }
	publishAll := func(names []string) ([]uint64, []error) {
		seqs, errs := make([]uint64, len(names)), make([]error, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() {
				none := uint64(0)
				seqs[i], errs[i] = pub.Publish(ctx, rec(name), PublishOptions{ExpectLastSeq: &none})
			})
		}
		wg.Wait()
		return seqs, errs
	}

	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("e.%d", i))
	}
	seqs, errs := publishAll(names)
	seen := map[uint64]bool{}
	for i := range names {
		require.NoError(t, errs[i], names[i])
		require.False(t, seen[seqs[i]], "sequence %d given twice", seqs[i])
		seen[seqs[i]] = true
	}

	same := make([]string, 40)
	for i := range same {
		same[i] = "contended"
	}
	_, errs = publishAll(same)
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, ErrConflict)
	}
	require.Equal(t, 1, won)

	require.Equal(t, uint64(301), storedStates(t, ns))

	// A caller that has given up is answered at once, and its state is not
	// sent.
	done, cancel := context.WithCancel(ctx)
	cancel()
	none := uint64(0)
	_, err := pub.Publish(done, rec("given-up"), PublishOptions{ExpectLastSeq: &none})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, uint64(301), storedStates(t, ns))
}

// TestPublishRidesOutAnOutage: while the JetStream server is down, each
// publish gives up with its caller's context instead of hanging, and the
// same publisher stores again once the server is back (the batches do not
// stay stuck behind the ones that went out during the outage).
func TestPublishRidesOutAnOutage(t *testing.T) {
	ns := eventsStream(t)
	ctx := context.Background()
	pub := NewPublisher(ns.JS)
	var n atomic.Int64
	publish := func(ctx context.Context) error {
		none := uint64(0)
		_, err := pub.Publish(ctx, createOf("web", fmt.Sprintf("e.%d", n.Add(1))), PublishOptions{ExpectLastSeq: &none})
		return err
	}
	require.NoError(t, publish(ctx))

	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	errs := make(chan error, 20)
	for range 20 {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		go func() {
			defer cancel()
			errs <- publish(pctx)
		}()
	}
	for range 20 {
		select {
		case err := <-errs:
			require.Error(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a publish did not give up with its context while the server was down")
		}
	}

	natstest.Restart(t, ns.Dir, port)
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return publish(pctx) == nil
	}, 30*time.Second, 100*time.Millisecond, "the publisher stores again once the server is back")
}

// TestPublishRetriesThroughAnOutage: a publish made while JetStream is down (as
// while a clustered stream elects a new leader) is retried, not failed,
// and is stored once when the server is back.
func TestPublishRetriesThroughAnOutage(t *testing.T) {
	dir := t.TempDir()
	first := natstest.Restart(t, dir, -1)
	require.NoError(t, Ensure(context.Background(), first.JS, DefaultConfig()))
	port := first.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(first.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	pub := NewPublisher(js)
	first.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		seq uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		none := uint64(0)
		seq, err := pub.Publish(ctx, createOf("web", "during-outage"), PublishOptions{ExpectLastSeq: &none})
		done <- result{seq, err}
	}()
	// The publish is in its retries while the server is down.
	select {
	case r := <-done:
		t.Fatalf("publish returned while JetStream was down: %d %v", r.seq, r.err)
	case <-time.After(time.Second):
	}
	second := natstest.Restart(t, dir, port)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, uint64(1), r.seq)
	require.Equal(t, uint64(1), storedStates(t, second))
}

// TestStoredEarlierTellsOwnWriteFromAnother: a conditional publish whose
// retry finds the subject moved is answered with success only when the
// newest state there carries its own write id.
func TestStoredEarlierTellsOwnWriteFromAnother(t *testing.T) {
	ns := eventsStream(t)
	ctx := context.Background()
	pub := NewPublisher(ns.JS)
	m, err := EncodeMsg(createOf("web", "mine"))
	require.NoError(t, err)
	m.Header.Set(HeaderWriteID, "id-1")
	ack, err := ns.JS.PublishMsg(ctx, m)
	require.NoError(t, err)

	seq, ok := pub.storedEarlier(ctx, m)
	require.True(t, ok)
	require.Equal(t, ack.Sequence, seq)

	other, err := EncodeMsg(createOf("web", "mine"))
	require.NoError(t, err)
	other.Header.Set(HeaderWriteID, "id-2")
	_, ok = pub.storedEarlier(ctx, other)
	require.False(t, ok, "another write's id is a conflict")
}
