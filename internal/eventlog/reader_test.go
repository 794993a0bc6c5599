package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

func TestReaderLatestAndTail(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	pub := eventlog.NewPublisher(ns.JS)
	r, err := eventlog.NewReader(ctx, ns.JS)
	require.NoError(t, err)
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	publish := func(namespace, name string, count int32) uint64 {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Count: count}
		seq, err := pub.Publish(ctx, &eventlog.Record{Key: eventlog.Key{Scope: alpha, Namespace: namespace, Name: name}, Op: eventlog.OpCreate, Event: ev},
			eventlog.PublishOptions{MsgID: fmt.Sprintf("%s/%s/%d", namespace, name, count)})
		require.NoError(t, err)
		return seq
	}
	first := publish("a", "x.1", 1)
	publish("b", "y.1", 1)
	publish("a", "x.1", 2)

	latest, err := r.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: alpha, Namespace: "a", Name: "x.1"}))
	require.NoError(t, err)
	require.EqualValues(t, 2, latest.Event.Count)
	latest, err = r.Latest(ctx, "events.*.*.a.x~2E1")
	require.NoError(t, err, "wildcard scopes")
	require.EqualValues(t, 2, latest.Event.Count)
	none, err := r.Latest(ctx, eventlog.Subject(eventlog.Key{Scope: alpha, Namespace: "a", Name: "nope"}))
	require.NoError(t, err)
	require.Nil(t, none)

	nsA := "a"
	tail, err := r.Tail(ctx, eventlog.FilterSubject(&alpha, &nsA), first+1)
	require.NoError(t, err)
	defer tail.Stop()
	publish("a", "z.1", 1)
	var got []string
	for len(got) < 2 {
		select {
		case rec := <-tail.C:
			got = append(got, fmt.Sprintf("%s:%d", rec.Key.Name, rec.Event.Count))
		case <-time.After(10 * time.Second):
			t.Fatalf("tail delivered only %v", got)
		}
	}
	require.Equal(t, []string{"x.1:2", "z.1:1"}, got, "namespace b is filtered out at the subject level")
	tail.Stop()
	for range tail.C {
	}
	require.NoError(t, tail.Err())
}

func TestEachLatest(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	pub := eventlog.NewPublisher(ns.JS)
	put := func(ns, name string, count int32, op eventlog.Op) {
		t.Helper()
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Count: count}
		_, err := pub.Publish(ctx, &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: ns, Name: name}, Op: op, Event: ev},
			eventlog.PublishOptions{MsgID: fmt.Sprintf("%s/%s/%d/%d", ns, name, count, op)})
		require.NoError(t, err)
	}
	put("a", "x", 1, eventlog.OpCreate)
	put("a", "x", 2, eventlog.OpUpdate)
	put("a", "y", 1, eventlog.OpCreate)
	put("a", "y", 1, eventlog.OpDelete)
	put("b", "z", 1, eventlog.OpCreate)
	r, err := eventlog.NewReader(ctx, ns.JS)
	require.NoError(t, err)
	nsA, platform := "a", scope.Platform
	got := map[string]string{}
	require.NoError(t, r.EachLatest(ctx, eventlog.FilterSubject(&platform, &nsA), func(rec *eventlog.Record) error {
		got[rec.Key.Name] = fmt.Sprintf("%s/%d", rec.Op, rec.Event.Count)
		return nil
	}))
	require.Equal(t, map[string]string{"x": "update/2", "y": "delete/1"}, got, "the newest state of each event in namespace a")

	none := "empty"
	require.NoError(t, r.EachLatest(ctx, eventlog.FilterSubject(&platform, &none), func(*eventlog.Record) error {
		t.Fatal("nothing to deliver")
		return nil
	}))
	stop := errors.New("stop")
	require.ErrorIs(t, r.EachLatest(ctx, eventlog.FilterSubject(&platform, nil), func(*eventlog.Record) error { return stop }), stop)
}
