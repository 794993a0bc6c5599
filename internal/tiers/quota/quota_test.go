package quota_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/quota"
	"github.com/eventpipe/eventpipe/internal/tiers/retention"
	"github.com/eventpipe/eventpipe/internal/tiers/tierstest"
)

var (
	alpha = tierstest.Alpha
	beta  = tierstest.Beta
	now   = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

// eventRow makes a realistic row through EncodeRow, as the writer does.
func eventRow(t *testing.T, sc scope.Scope, name string, seq uint64, at time.Time) (chstore.Row, *eventlog.Record) {
	t.Helper()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "prod", Name: name, UID: "uid-" + "name", Labels: map[string]string{"app": "web"}},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "prod", Name: "web-1", APIVersion: "v1"},
		Reason:         "BackOff", Message: fmt.Sprintf("Back-off restarting failed container (%d)", seq), Type: corev1.EventTypeWarning,
		Source:        corev1.EventSource{Component: "kubelet", Host: "node-1"},
		LastTimestamp: metav1.NewTime(at), Count: 1,
	}
	rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: "prod", Name: name}, Op: eventlog.OpCreate, Event: ev, Seq: seq}
	row, err := chstore.EncodeRow(rec, at)
	require.NoError(t, err)
	return row, rec
}

// TestQuotaExactAndRecoversAfterRetention: the quota refuses exactly above
// the limit (equal is allowed), counts accepted writes until ClickHouse has
// them and then once, and lets writes through again after retention frees
// space.
func TestQuotaExactAndRecoversAfterRetention(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(now)

	var old, recent []chstore.Row
	var oldBytes, recentBytes int64
	seq := uint64(0)
	for i := range 20 {
		seq++
		r, _ := eventRow(t, alpha, fmt.Sprintf("old-%d", i), seq, now.Add(-30*time.Hour))
		old = append(old, r)
		oldBytes += chstore.RowBytes(&r)
	}
	for i := range 10 {
		seq++
		r, _ := eventRow(t, alpha, fmt.Sprintf("new-%d", i), seq, now.Add(-time.Hour))
		recent = append(recent, r)
		recentBytes += chstore.RowBytes(&r)
	}
	other, _ := eventRow(t, beta, "b", 100, now.Add(-time.Hour))
	require.NoError(t, s.Insert(ctx, old))
	require.NoError(t, s.Insert(ctx, recent))
	require.NoError(t, s.Insert(ctx, []chstore.Row{other}))
	used := oldBytes + recentBytes

	// The next write is a real event; the quota leaves exactly room for it.
	nextRow, nextRec := eventRow(t, alpha, "next", 101, now)
	next, err := quota.EventBytes(nextRec)
	require.NoError(t, err)
	require.Equal(t, chstore.RowBytes(&nextRow), next)
	limit := used + next
	cfg := tierstest.Config(t, fmt.Sprintf("tenants:\n  Project/alpha: {storageQuota: \"%d\"}\n", limit))
	res := tiers.NewResolver(cfg)

	var committed atomic.Uint64
	committed.Store(100)
	tr := quota.New(s, res, quota.Config{Committed: committed.Load}, clk, nil, nil)
	require.NoError(t, tr.Check(alpha, 1<<40), "before the first refresh usage is unknown: allowed")
	require.NoError(t, tr.Refresh(ctx))
	u := tr.Usage(alpha)
	require.Equal(t, used, u.Used, "ClickHouse's sum equals RowBytes")
	require.EqualValues(t, limit, u.Limits.StorageQuota)

	// Exact at the boundary.
	require.NoError(t, tr.Check(alpha, next), "used + incoming == limit is allowed")
	err = tr.Check(alpha, next+1)
	var ex *quota.Exceeded
	require.ErrorAs(t, err, &ex)
	require.Equal(t, used, ex.Used)
	st := ex.Status(schema.GroupResource{Resource: "events"}, "next")
	require.EqualValues(t, http.StatusForbidden, st.Status().Code)
	require.Contains(t, st.Error(), "storage quota of tier Free exceeded for Project/alpha: used ")
	require.Contains(t, st.Error(), fmt.Sprintf("(%d bytes) of ", used))
	require.Contains(t, st.Error(), fmt.Sprintf("(%d bytes), this write needs", limit))
	require.NoError(t, tr.Check(beta, 1<<29), "another tenant is not affected")

	// Reserve and commit the write: the quota is full.
	rv, err := tr.Reserve(alpha, next)
	require.NoError(t, err)
	_, err = tr.Reserve(alpha, 1)
	require.ErrorAs(t, err, &ex, "a reservation holds its bytes")
	rv.Commit(101)
	require.Equal(t, limit, tr.Usage(alpha).Used)
	require.Error(t, tr.Check(alpha, 1))

	// The writer stores it; until the watermark passes it, it may count
	// twice (conservative), then exactly once.
	require.NoError(t, s.Insert(ctx, []chstore.Row{nextRow}))
	require.NoError(t, tr.Refresh(ctx))
	require.Equal(t, limit+next, tr.Usage(alpha).Used, "in ClickHouse and still pending")
	committed.Store(101)
	require.NoError(t, tr.Refresh(ctx))
	u = tr.Usage(alpha)
	require.Equal(t, limit, u.Used)
	require.Zero(t, u.Pending)
	require.Error(t, tr.Check(alpha, 1))

	// A cancelled reservation gives its bytes back.
	res.Set(tierstest.Config(t, fmt.Sprintf("tenants:\n  Project/alpha: {storageQuota: \"%d\"}\n", limit+10)))
	rv, err = tr.Reserve(alpha, 10)
	require.NoError(t, err)
	rv.Cancel()
	require.NoError(t, tr.Check(alpha, 10))
	res.Set(cfg)

	// Retention (Free: 24 h) removes the 30-hour-old rows; the next
	// refresh sees the space and writes pass again.
	w := retention.New(s, res, retention.Config{MutationPoll: 20 * time.Millisecond}, clk, nil, nil)
	rep, err := w.RunOnce(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 20, rep.Tables["events"].Deleted[alpha])
	require.NoError(t, tr.Refresh(ctx))
	u = tr.Usage(alpha)
	require.Equal(t, recentBytes+next, u.Used, "exactly the deleted rows' bytes are freed")
	require.NoError(t, tr.Check(alpha, oldBytes), "room again, to the byte")
	require.Error(t, tr.Check(alpha, oldBytes+1))

	// A tracker measuring from scratch agrees with the incremental one.
	fresh := quota.New(s, res, quota.Config{}, clk, nil, nil)
	require.NoError(t, fresh.Refresh(ctx))
	require.Equal(t, u.Used, fresh.Usage(alpha).Used)
	require.Equal(t, chstore.RowBytes(&other), fresh.Usage(beta).Used)
}

// TestIncrementalRefresh: new rows in a partition are added without
// re-reading it, and agree with a full measure.
func TestIncrementalRefresh(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(now)
	res := tiers.NewResolver(nil)
	tr := quota.New(s, res, quota.Config{}, clk, nil, nil)
	var want int64
	seq := uint64(0)
	for batch := range 5 {
		var rows []chstore.Row
		for i := range 7 {
			seq++
			r, _ := eventRow(t, alpha, fmt.Sprintf("e-%d-%d", batch, i), seq, now.Add(-time.Duration(i)*time.Hour))
			want += chstore.RowBytes(&r)
			rows = append(rows, r)
		}
		require.NoError(t, s.Insert(ctx, rows))
		require.NoError(t, tr.Refresh(ctx))
		require.Equal(t, want, tr.Usage(alpha).Used, "after batch %d", batch)
	}
	fresh := quota.New(s, res, quota.Config{}, clk, nil, nil)
	require.NoError(t, fresh.Refresh(ctx))
	require.Equal(t, want, fresh.Usage(alpha).Used)
}

// BenchmarkCheck measures the quota check on the create path, and a
// reservation with its commit, for 1,000 tenants.
func BenchmarkCheck(b *testing.B) {
	res := tiers.NewResolver(nil)
	tr := quota.New(emptySource{}, res, quota.Config{}, clocktesting.NewFakeClock(now), nil, nil)
	require.NoError(b, tr.Refresh(context.Background()))
	many := tierstest.Projects(1000)
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := tr.Check(many[i%len(many)], 700); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("reserve-commit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r, err := tr.Reserve(many[i%len(many)], 1)
			if err != nil {
				b.Fatal(err)
			}
			r.Commit(uint64(i))
			i++
		}
	})
}

// emptySource is an events table with nothing in it: the benchmark measures
// the in-memory check, not ClickHouse.
type emptySource struct{}

func (emptySource) Partitions(context.Context) ([]chstore.Partition, error) { return nil, nil }
func (emptySource) PartitionUsage(context.Context, string, uint64) ([]chstore.ScopeUsage, uint64, error) {
	return nil, 0, nil
}
