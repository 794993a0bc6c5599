package exporter

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/eventtest"
)

func TestCheckpointsOnlyMoveForward(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	cps, err := openCheckpoints(ctx, ns.JS)
	require.NoError(t, err)
	key := CheckpointKey("prod", "")
	require.Equal(t, "exporter.prod.all", key)
	require.Equal(t, "exporter.prod.ns.kube-system", CheckpointKey("prod", "kube-system"))

	rv, err := cps.load(ctx, key)
	require.NoError(t, err)
	require.Empty(t, rv, "no checkpoint yet")

	require.NoError(t, cps.store(ctx, key, "100"))
	require.NoError(t, cps.store(ctx, key, "99"), "an older value is ignored, not an error")
	rv, err = cps.load(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "100", rv)

	// Two writers at once (an old and a new leader): the highest wins.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, cps.store(ctx, key, []string{"150", "120", "200", "180"}[i%4]))
		}()
	}
	wg.Wait()
	rv, err = cps.load(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "200", rv)

	require.Error(t, cps.store(ctx, key, "x"), "only etcd-style versions are stored")
}
