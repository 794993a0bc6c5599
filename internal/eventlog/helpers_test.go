package eventlog

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// eventsStream starts a JetStream server for one test or benchmark, with
// the EVENTS stream in it.
func eventsStream(tb testing.TB) *natstest.Server {
	tb.Helper()
	ns := natstest.ForTest(tb)
	require.NoError(tb, Ensure(context.Background(), ns.JS, DefaultConfig()))
	return ns
}

// storedStates returns how many states EVENTS holds.
func storedStates(t *testing.T, ns *natstest.Server) uint64 {
	t.Helper()
	ctx := context.Background()
	stream, err := ns.JS.Stream(ctx, StreamName)
	require.NoError(t, err)
	si, err := stream.Info(ctx)
	require.NoError(t, err)
	return si.State.Msgs
}

// createOf is the create of an event that has nothing but its namespace
// and name, on the platform scope.
func createOf(namespace, name string) *Record {
	return &Record{Key: Key{Scope: scope.Platform, Namespace: namespace, Name: name}, Op: OpCreate,
		Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}
}
