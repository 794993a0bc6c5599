package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

func record(sc scope.Scope, i int, at time.Time) *Record {
	return &Record{Scope: sc, Event: &auditv1.Event{
		TypeMeta: metav1.TypeMeta{APIVersion: "audit.k8s.io/v1", Kind: "Event"},
		AuditID:  ktypes.UID("id-" + fmt.Sprint(i)), Stage: auditv1.StageResponseComplete, Level: auditv1.LevelMetadata, Verb: "delete",
		User:      authnv1.UserInfo{Username: "bob", Groups: []string{"system:authenticated"}},
		ObjectRef: &auditv1.ObjectReference{Resource: "configmaps", Namespace: "prod", Name: fmt.Sprintf("cm-%d", i), APIVersion: "v1"},
		SourceIPs: []string{"10.0.0.1", "10.0.0.2"}, ResponseStatus: &metav1.Status{Code: 200},
		RequestReceivedTimestamp: metav1.NewMicroTime(at), StageTimestamp: metav1.NewMicroTime(at.Add(time.Millisecond)),
	}}
}

// TestIndexer moves records from a real JetStream into a real ClickHouse,
// and a record stored again in AUDIT (kube-apiserver resent it after the
// duplicate window) is still read once; the watermark covers both, and
// indexed records past the retention are trimmed from the stream.
func TestIndexer(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	require.NoError(t, eventlog.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	require.NoError(t, Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	store := storetest.New(t)
	pub := NewPublisher(ns.JS)
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	at := time.Now().UTC().Add(-time.Minute)
	var recs []*Record
	var ids []string
	for i := range 10 {
		r := record(alpha, i, at.Add(time.Duration(i)*time.Second))
		recs, ids = append(recs, r), append(ids, MsgID(alpha, string(r.Event.AuditID), r.Event.Stage))
	}
	require.NoError(t, pub.PublishAll(ctx, recs, ids))
	// The same record again, under an id the stream has forgotten.
	again := record(alpha, 3, at.Add(3*time.Second))
	require.NoError(t, pub.PublishAll(ctx, []*Record{again}, []string{"forgotten"}))
	require.EqualValues(t, 11, again.Seq)

	cfg := DefaultIndexerConfig()
	cfg.BatchSize, cfg.BatchWait, cfg.Retention, cfg.TrimInterval = 4, 10*time.Millisecond, time.Nanosecond, time.Millisecond
	x := NewIndexer(ns.JS, store, cfg, nil, nil)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- x.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	require.NoError(t, x.Watermark().WaitFor(wctx, 11))

	got, err := store.QueryAudit(ctx, chstore.AuditQuery{Scope: &alpha, Start: at.Add(-time.Hour), End: time.Now(), AtSeq: 11, Limit: 100}, chstore.Limits{})
	require.NoError(t, err)
	require.Len(t, got, 10, "each record once, the resent one included")
	n, err := store.CountAudit(ctx, chstore.AuditQuery{Scope: &alpha, Start: at.Add(-time.Hour), End: time.Now(), AtSeq: 11}, chstore.Limits{})
	require.NoError(t, err)
	require.EqualValues(t, 10, n)

	// Indexed and past the (tiny) retention: trimmed, after a later batch.
	require.NoError(t, pub.PublishAll(ctx, []*Record{record(alpha, 20, at)}, []string{"late"}))
	require.NoError(t, x.Watermark().WaitFor(wctx, 12))
	s, err := ns.JS.Stream(ctx, StreamName)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_ = pub.PublishAll(ctx, []*Record{record(alpha, 21, at)}, []string{"later-" + time.Now().String()})
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
		return err == nil && info.State.FirstSeq > 1
	}, time.Minute, 100*time.Millisecond, "indexed records past the retention leave the stream")
	cancel()
	require.NoError(t, <-done)
}

func TestDecodeRefusesForeignSubjects(t *testing.T) {
	for _, subj := range []string{"events.a.b.c.d", "audit.onlyone", "audit.a.b.c", "audit.%zz.b"} {
		_, err := Decode(subj, []byte(`{}`), 1, time.Now())
		require.Error(t, err, subj)
	}
	_, err := Decode("audit.Project.alpha", []byte(`{`), 1, time.Now())
	require.ErrorContains(t, err, "decode audit record on audit.Project.alpha (seq 1)")
}
