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

// TestPublishStoresAResentStateOnce: each of the two guards a publisher may
// use, a message id or an expected last sequence, keeps a second copy of the
// same publish out of the stream; without either, Publish refuses.
func TestPublishStoresAResentStateOnce(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	require.NoError(t, Ensure(ctx, ns.JS, DefaultConfig()))
	pub := NewPublisher(ns.JS)
	rec := func(name string) *Record {
		return &Record{Key: Key{Scope: scope.Platform, Namespace: "web", Name: name}, Op: OpCreate,
			Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: name}}}
	}

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

	info, err := ns.JS.Stream(ctx, StreamName)
	require.NoError(t, err)
	si, err := info.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), si.State.Msgs, "one message per distinct state")
}
