// Package eventtest holds what tests of several packages build and read
// again and again: a realistic Event, a JetStream with the EVENTS stream,
// and every state that stream holds.
package eventtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// BackOff is the kubelet's warning that a container of pod web-1 in ns keeps
// crashing, in its state count: last seen at last, first seen a minute
// earlier, both to the second as the kubelet writes them. Its UID is
// "uid-" + name, so that states built for the same name are one event.
func BackOff(ns, name string, count int32, last time.Time) *corev1.Event {
	first := metav1.NewTime(last.Add(-time.Minute).Truncate(time.Second))
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), CreationTimestamp: first},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1", UID: "pod-uid", APIVersion: "v1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: first,
		LastTimestamp:  metav1.NewTime(last.Truncate(time.Second)), Count: count,
	}
}

// Stream starts a private JetStream server for tb, stopped when tb ends,
// with the EVENTS stream created as eventpipe creates it at start-up.
func Stream(tb testing.TB) *natstest.Server {
	tb.Helper()
	ns := natstest.ForTest(tb)
	require.NoError(tb, eventlog.Ensure(context.Background(), ns.JS, eventlog.DefaultConfig()))
	return ns
}

// States reads every state in the EVENTS stream on the subjects filter
// matches (eventlog.FilterSubject), in stream order. It reads as many as the
// stream holds when it is called, so states published meanwhile may be
// missing.
func States(t testing.TB, js jetstream.JetStream, filter string) []*eventlog.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, eventlog.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	require.NoError(t, err)
	var want uint64
	for _, n := range info.State.Subjects {
		want += n
	}
	var out []*eventlog.Record
	if want == 0 {
		return out
	}
	cons, err := js.OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	require.NoError(t, err)
	for uint64(len(out)) < want {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			md, err := m.Metadata()
			require.NoError(t, err)
			rec, err := eventlog.DecodeMsg(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
			require.NoError(t, err)
			out = append(out, rec)
		}
		require.NoError(t, batch.Error())
	}
	return out
}
