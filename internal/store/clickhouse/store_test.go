package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func openStore(t *testing.T) *chstore.Store {
	t.Helper()
	srv := chtest.ForTest(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr = srv.Addr
	s, err := chstore.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func testEvent(ns, name string, count int32, last time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(last.Add(-time.Minute).Truncate(time.Second))},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1", UID: "pod-uid", APIVersion: "v1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(last.Add(-time.Minute).Truncate(time.Second)),
		LastTimestamp:  metav1.NewTime(last.Truncate(time.Second)), Count: count,
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	require.Contains(t, applied, 1)
	again, err := s.Migrate(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second run applies nothing")
	if !s.Version().AtLeast(20, 1) {
		require.NotContains(t, applied, 2, "skip indexes are an extra of newer servers")
	}
}

func TestLatestFoldsStatesAndDuplicates(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	_, err := s.Migrate(ctx)
	require.NoError(t, err)

	now := time.Now().UTC()
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	var rows []chstore.Row
	seq := uint64(0)
	add := func(sc scope.Scope, op eventlog.Op, ev *corev1.Event) {
		seq++
		rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: seq}
		row, err := chstore.EncodeRow(rec, now)
		require.NoError(t, err)
		rows = append(rows, row)
	}
	for i := range 5 {
		add(alpha, eventlog.OpCreate, testEvent("prod", fmt.Sprintf("e%d", i), 1, now.Add(-time.Hour)))
	}
	add(beta, eventlog.OpCreate, testEvent("prod", "e0", 1, now.Add(-time.Hour))) // same name, other tenant
	for c := int32(2); c <= 4; c++ {
		add(alpha, eventlog.OpUpdate, testEvent("prod", "e0", c, now.Add(-time.Hour+time.Duration(c)*time.Second)))
	}
	add(alpha, eventlog.OpDelete, testEvent("prod", "e1", 1, now.Add(-time.Hour)))
	require.NoError(t, s.Insert(ctx, rows))
	require.NoError(t, s.Insert(ctx, rows[2:7]), "an exact re-insert (writer crash before ack)")

	got, err := s.Latest(ctx, chstore.LatestFilter{Scope: &alpha})
	require.NoError(t, err)
	require.Len(t, got, 4, "e0, e2, e3, e4: e1 is deleted, duplicates fold")
	require.Equal(t, "e0", got[0].Event.Name)
	require.EqualValues(t, 4, got[0].Event.Count, "latest state wins")
	require.Equal(t, "9", got[0].Event.ResourceVersion, "resourceVersion is the sequence")

	atSeq, err := s.Latest(ctx, chstore.LatestFilter{Scope: &alpha, AtSeq: 7})
	require.NoError(t, err)
	require.Len(t, atSeq, 5, "as of seq 7 the delete (seq 10) has not happened")
	require.EqualValues(t, 2, atSeq[0].Event.Count)

	n, err := s.CountLatest(ctx, chstore.LatestFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 5, n, "all scopes")
	n, err = s.CountLatest(ctx, chstore.LatestFilter{Scope: &beta})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = s.CountLatest(ctx, chstore.LatestFilter{Scope: &alpha, Since: now.Add(-30 * time.Minute)})
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "window excludes older events")

	stored, bytes, err := s.DiskUsage(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rows)+5, stored)
	require.Positive(t, bytes)
}
