package eventlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// recreate deletes EVENTS and creates it again, as an operator's `nats
// stream rm` followed by an eventpipe start would: same name, sequences
// from 1, a new creation time.
func recreate(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, js.DeleteStream(ctx, StreamName))
	require.NoError(t, Ensure(ctx, js, DefaultConfig()))
}

// TestCheckEpochNoticesARecreatedStream: the first check records the
// stream's creation time, later checks of the same stream pass, and a
// recreated stream is refused with an error that says what happened and
// where to read what to do.
func TestCheckEpochNoticesARecreatedStream(t *testing.T) {
	ns := eventsStream(t)
	ctx := context.Background()
	first, err := CheckEpoch(ctx, ns.JS)
	require.NoError(t, err)
	again, err := CheckEpoch(ctx, ns.JS)
	require.NoError(t, err)
	require.True(t, first.Equal(again))

	recreate(t, ns.JS)
	_, err = CheckEpoch(ctx, ns.JS)
	require.ErrorIs(t, err, ErrStreamRecreated)
	for _, want := range []string{first.UTC().Format(time.RFC3339Nano), StreamEpochKey, "docs/high-availability.md"} {
		require.True(t, strings.Contains(err.Error(), want), "%q does not say %q", err, want)
	}
}

// TestGuardEpochStopsOnRecreation: a running process's guard returns
// within a few intervals of the stream being recreated, and returns nil
// when its context ends while the stream is unchanged.
func TestGuardEpochStopsOnRecreation(t *testing.T) {
	ns := eventsStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	epoch, err := CheckEpoch(ctx, ns.JS)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	quiet, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	require.NoError(t, GuardEpoch(quiet, ns.JS, epoch, 20*time.Millisecond, log))

	done := make(chan error, 1)
	go func() { done <- GuardEpoch(ctx, ns.JS, epoch, 20*time.Millisecond, log) }()
	recreate(t, ns.JS)
	select {
	case err := <-done:
		require.True(t, errors.Is(err, ErrStreamRecreated), "%v", err)
	case <-ctx.Done():
		t.Fatal("the guard did not notice the recreated stream")
	}
}
