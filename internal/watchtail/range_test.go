package watchtail

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

func seqsOf(recs []*eventlog.Record) []uint64 {
	out := []uint64{}
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

// Both ways of reading a range of the log, the hub's ring and JetStream,
// give the same states: those after after and up to upto on the filter's
// subjects, in order.
func TestRange(t *testing.T) {
	f := newHubFixture(t, 8)
	ctx := context.Background()
	a, b := "a", "b"
	var seqs []uint64
	for _, ns := range []string{a, b, a, a, b, a} {
		seqs = append(seqs, f.put(ns))
	}
	r, err := eventlog.NewReader(ctx, f.js)
	require.NoError(t, err)
	for _, tc := range []struct {
		name        string
		ns          *string
		after, upto uint64
		want        []uint64
	}{
		{"all", nil, 0, seqs[5], seqs},
		{"namespace a", &a, 0, seqs[5], []uint64{seqs[0], seqs[2], seqs[3], seqs[5]}},
		{"after and upto bound it", &a, seqs[0], seqs[3], []uint64{seqs[2], seqs[3]}},
		{"upto on another subject", &a, seqs[2], seqs[4], []uint64{seqs[3]}},
		{"empty", nil, seqs[5], seqs[5], []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filter := eventlog.FilterSubject(nil, tc.ns)
			got, ok := f.hub.Range(ctx, filter, tc.after, tc.upto, 10*time.Second)
			require.True(t, ok)
			require.Equal(t, tc.want, seqsOf(got), "hub")
			got, err := r.Range(ctx, filter, tc.after, tc.upto, 100)
			require.NoError(t, err)
			require.Equal(t, tc.want, seqsOf(got), "JetStream")
		})
	}

	t.Run("hub waits for upto", func(t *testing.T) {
		last := seqs[5]
		done := make(chan []uint64)
		go func() {
			got, ok := f.hub.Range(ctx, eventlog.FilterSubject(nil, nil), last, last+1, 10*time.Second)
			if !ok {
				got = nil
			}
			done <- seqsOf(got)
		}()
		next := f.put(a)
		require.Equal(t, []uint64{next}, <-done)
	})
	t.Run("hub refuses what its ring lost", func(t *testing.T) {
		for range 8 {
			f.put(b)
		}
		_, last, err := r.Bounds(ctx)
		require.NoError(t, err)
		_, ok := f.hub.Range(ctx, eventlog.FilterSubject(nil, nil), 0, last, 10*time.Second)
		require.False(t, ok)
		got, ok := f.hub.Range(ctx, eventlog.FilterSubject(nil, nil), last-8, last, 10*time.Second)
		require.True(t, ok)
		require.Len(t, got, 8)
	})
	t.Run("hub does not wait past its bound", func(t *testing.T) {
		_, last, err := r.Bounds(ctx)
		require.NoError(t, err)
		_, ok := f.hub.Range(ctx, eventlog.FilterSubject(nil, nil), last, last+100, 50*time.Millisecond)
		require.False(t, ok)
	})
	t.Run("JetStream refuses a range longer than allowed", func(t *testing.T) {
		_, err := r.Range(ctx, eventlog.FilterSubject(nil, &b), 0, seqs[5], 1)
		require.True(t, errors.Is(err, eventlog.ErrRangeTooLong), "got %v", err)
	})
}
