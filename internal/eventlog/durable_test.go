package eventlog

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// durableOn returns a Durable on EVENTS holding five states (sequences 1
// to 5), and the stream.
func durableOn(t *testing.T) (Durable, jetstream.Stream) {
	t.Helper()
	ns := eventsStream(t)
	ctx := context.Background()
	pub := NewPublisher(ns.JS)
	for i := 1; i <= 5; i++ {
		_, err := pub.Publish(ctx, createOf("web", fmt.Sprintf("e%d", i)), PublishOptions{MsgID: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	stream, err := ns.JS.Stream(ctx, StreamName)
	require.NoError(t, err)
	return Durable{JS: ns.JS, Stream: StreamName, Name: "test", Filter: SubjectPrefix + ".>",
		AckWait: time.Minute, MaxAckPending: 100, BatchSize: 100, BatchWait: 100 * time.Millisecond}, stream
}

func seqsOf(run []Delivery) []uint64 {
	var out []uint64
	for _, d := range run {
		out = append(out, d.Seq)
	}
	return out
}

// TestDurableCutStopsAtAnUndeliveredState: a state that the stream still
// holds but that was not delivered ends the run before it and asks for a
// restart there; a purged one is skipped and counted; redeliveries of
// states already done are not handed on but still belong to the batch.
func TestDurableCutStopsAtAnUndeliveredState(t *testing.T) {
	ctx := context.Background()
	d, stream := durableOn(t)
	cons, err := d.Reset(ctx, 1)
	require.NoError(t, err)
	msgs, err := d.fetch(cons)
	require.NoError(t, err)
	require.Len(t, msgs, 5)
	log := slog.New(slog.DiscardHandler)

	// 3 is lost in delivery but stored.
	lost := []jetstream.Msg{msgs[0], msgs[1], msgs[3], msgs[4]}
	next := uint64(1)
	b, gap := d.cut(ctx, stream, lost, &next, log)
	require.True(t, gap)
	require.Equal(t, []uint64{1, 2}, seqsOf(b.Run))
	require.Len(t, b.Fetched, 2, "the states after the gap are not held")
	require.Equal(t, uint64(3), next, "delivery restarts at the missing state")
	require.Equal(t, uint64(2), b.Last().Seq)

	// Once 3 is purged, nothing is lost by skipping it.
	require.NoError(t, stream.DeleteMsg(ctx, 3))
	next = 1
	b, gap = d.cut(ctx, stream, lost, &next, log)
	require.False(t, gap)
	require.Equal(t, []uint64{1, 2, 4, 5}, seqsOf(b.Run))
	require.Equal(t, []uint64{0, 0, 1, 0}, []uint64{b.Run[0].Purged, b.Run[1].Purged, b.Run[2].Purged, b.Run[3].Purged})
	require.Equal(t, uint64(6), next)

	// Redeliveries below next are held, not handed on.
	next = 5
	b, gap = d.cut(ctx, stream, lost, &next, log)
	require.False(t, gap)
	require.Equal(t, []uint64{5}, seqsOf(b.Run))
	require.Len(t, b.Fetched, 4)
}

// TestDurableResumesAfterWhatWasAcknowledged: Consume hands on every
// state once, in order; after an acknowledgement the ack floor says where
// a new run resumes, and a mark ahead of it is read back.
func TestDurableResumesAfterWhatWasAcknowledged(t *testing.T) {
	ctx := context.Background()
	d, stream := durableOn(t)
	floor, err := d.AckFloor(ctx)
	require.NoError(t, err)
	require.Zero(t, floor, "no consumer yet")

	cons, err := d.Reset(ctx, 1)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var got []uint64
	err = d.Consume(runCtx, cons, stream, 1, slog.New(slog.DiscardHandler), func(ctx context.Context, b Batch) bool {
		got = append(got, seqsOf(b.Run)...)
		if len(b.Run) > 0 {
			require.NoError(t, b.Last().Msg.DoubleAck(ctx))
		}
		if len(got) >= 5 {
			stop()
		}
		return true
	})
	require.NoError(t, err, "cancellation is not an error")
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, got)

	floor, err = d.AckFloor(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(5), floor)

	kv, err := d.JS.KeyValue(ctx, StateBucket)
	require.NoError(t, err)
	mark, err := ReadMark(ctx, kv, "test-mark")
	require.NoError(t, err)
	require.Zero(t, mark, "an absent mark reads as 0")
	_, err = kv.Put(ctx, "test-mark", []byte("7"))
	require.NoError(t, err)
	mark, err = ReadMark(ctx, kv, "test-mark")
	require.NoError(t, err)
	require.Equal(t, uint64(7), mark)

	// Resume starts after the larger of the ack floor and the mark.
	pub := NewPublisher(d.JS)
	for i := 6; i <= 9; i++ {
		_, err := pub.Publish(ctx, createOf("web", fmt.Sprintf("e%d", i)), PublishOptions{MsgID: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	r, err := d.Resume(ctx, "no-mark")
	require.NoError(t, err)
	require.Equal(t, uint64(5), r.Done, "without a mark: the ack floor")
	r, err = d.Resume(ctx, "test-mark")
	require.NoError(t, err)
	require.Equal(t, uint64(7), r.Done, "a mark ahead of the ack floor")
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	got = nil
	require.NoError(t, r.Consume(runCtx, slog.New(slog.DiscardHandler), func(ctx context.Context, b Batch) bool {
		got = append(got, seqsOf(b.Run)...)
		if len(got) >= 2 {
			stop()
		}
		return true
	}))
	require.Equal(t, []uint64{8, 9}, got, "delivery resumes right after the mark")
}

// TestBatchMarksTakeWhatIsOlderThanTheCutoff: the marks hand back the end
// of the newest batch stored before the cutoff, once.
func TestBatchMarksTakeWhatIsOlderThanTheCutoff(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var m BatchMarks
	require.Zero(t, m.TakeBefore(t0), "no batches")
	m.Add(10, t0)
	m.Add(20, t0.Add(time.Minute))
	m.Add(30, t0.Add(2*time.Minute))
	require.Zero(t, m.TakeBefore(t0), "a batch stored at the cutoff is not before it")
	require.Equal(t, uint64(20), m.TakeBefore(t0.Add(90*time.Second)))
	require.Zero(t, m.TakeBefore(t0.Add(90*time.Second)), "taken batches are forgotten")
	require.Equal(t, uint64(30), m.TakeBefore(t0.Add(time.Hour)))
}
