package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/retry"
)

func TestSleep(t *testing.T) {
	require.True(t, retry.Sleep(context.Background(), time.Millisecond), "a wait that runs out")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	require.False(t, retry.Sleep(ctx, time.Hour), "a cancelled wait")
	require.Less(t, time.Since(start), time.Minute, "a cancelled wait returns at once")
}
