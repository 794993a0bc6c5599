package freeport_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/freeport"
)

func TestPortsAreDistinctAndFree(t *testing.T) {
	ports, err := freeport.Ports(3)
	require.NoError(t, err)
	require.Len(t, ports, 3)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d chosen twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d is free", p)
		require.NoError(t, l.Close())
	}
}

// The ports come from below the ephemeral range, where outgoing connections
// cannot take them while a server restarts on one.
func TestPortsAreBelowTheEphemeralRange(t *testing.T) {
	ports, err := freeport.Ports(20)
	require.NoError(t, err)
	lo := freeport.EphemeralStart()
	for _, p := range ports {
		require.Less(t, p, lo, "port %d", p)
		require.GreaterOrEqual(t, p, 10000, "port %d", p)
	}
}
