package event

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// memLog is a log in memory: every state, in sequence order. Only what
// lists use is implemented.
type memLog struct {
	Log
	states []*eventlog.Record
}

func (l *memLog) Bounds(context.Context) (uint64, uint64, error) {
	return 1, uint64(len(l.states)), nil
}

// Range ignores the filter: the test's events are all in one namespace.
func (l *memLog) Range(_ context.Context, _ string, after, upto uint64) ([]*eventlog.Record, error) {
	return append([]*eventlog.Record(nil), l.states[after:upto]...), nil
}

// memIndex is the index in memory: the log's states up to the watermark,
// answered as ClickHouseIndex answers (latest state per key at AtSeq, deletes
// left out, key order, cursor, limit). Field conditions are left to the
// registry's in-memory selector, which applies them again anyway.
type memIndex struct {
	Index
	log *memLog
	wm  *eventlog.Watermark
}

func (x *memIndex) latest(f LatestFilter) []*eventlog.Record {
	at := min(f.AtSeq, x.wm.Load())
	byKey := map[eventlog.Key]*eventlog.Record{}
	for _, rec := range x.log.states[:at] {
		byKey[rec.Key] = rec
	}
	var out []*eventlog.Record
	for _, rec := range byKey {
		if rec.Op != eventlog.OpDelete && (f.Namespace == nil || rec.Key.Namespace == *f.Namespace) {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Key, out[j].Key) })
	return out
}

func (x *memIndex) List(_ context.Context, q ListQuery) ([]*eventlog.Record, error) {
	var out []*eventlog.Record
	for _, rec := range x.latest(q.LatestFilter) {
		if q.After != nil && !keyLess(*q.After, rec.Key) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, rec)
	}
	return out, nil
}

func (x *memIndex) CountLatest(_ context.Context, f LatestFilter) (uint64, error) {
	return uint64(len(x.latest(f))), nil
}

// TestListMergesTheLogAfterTheWatermark: a list answers at the log's end,
// the index's states up to the watermark replaced by the log's newer ones,
// page by page on one snapshot.
func TestListMergesTheLogAfterTheWatermark(t *testing.T) {
	log := &memLog{}
	put := func(op eventlog.Op, name, typ string) {
		seq := uint64(len(log.states) + 1)
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, ResourceVersion: strconv.FormatUint(seq, 10),
			CreationTimestamp: metav1.Now()}, Type: typ}
		log.states = append(log.states, &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "prod", Name: name},
			Op: op, Seq: seq, Event: ev})
	}
	// Committed: a, b, c, d, e.
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		put(eventlog.OpCreate, n, "Normal")
	}
	wm := eventlog.NewWatermark()
	wm.Advance(5)
	// After the watermark: b updated, c deleted, aa and f created, d
	// updated and then deleted, a deleted and created again.
	put(eventlog.OpUpdate, "b", "Warning")
	put(eventlog.OpDelete, "c", "Normal")
	put(eventlog.OpCreate, "aa", "Warning")
	put(eventlog.OpCreate, "f", "Normal")
	put(eventlog.OpUpdate, "d", "Warning")
	put(eventlog.OpDelete, "d", "Warning")
	put(eventlog.OpDelete, "a", "Normal")
	put(eventlog.OpCreate, "a", "Warning")

	r := NewREST(CoreV1, log, &memIndex{log: log, wm: wm}, wm, scope.PlatformScopes{}, nil, DefaultOptions())
	ctx := genericapirequest.WithNamespace(context.Background(), "prod")
	list := func(opts *metainternalversion.ListOptions) *corev1.EventList {
		t.Helper()
		obj, err := r.List(ctx, opts)
		require.NoError(t, err)
		return obj.(*corev1.EventList)
	}
	names := func(l *corev1.EventList) []string {
		var out []string
		for _, ev := range l.Items {
			out = append(out, ev.Name+"@"+ev.ResourceVersion)
		}
		return out
	}

	all := list(&metainternalversion.ListOptions{})
	require.Equal(t, "13", all.ResourceVersion, "answered at the log's end")
	require.Equal(t, []string{"a@13", "aa@8", "b@6", "e@5", "f@9"}, names(all))

	warn := list(&metainternalversion.ListOptions{FieldSelector: kfields.OneTermEqualSelector("type", "Warning")})
	require.Equal(t, []string{"a@13", "aa@8", "b@6"}, names(warn))

	require.Equal(t, []string{"a@1", "b@2", "c@3", "d@4", "e@5"}, names(list(&metainternalversion.ListOptions{ResourceVersion: "0"})),
		"resourceVersion=0: the watermark, from the index alone")
	require.Equal(t, []string{"a@1", "aa@8", "b@6", "d@4", "e@5"},
		names(list(&metainternalversion.ListOptions{ResourceVersion: "8", ResourceVersionMatch: metav1.ResourceVersionMatchExact})))

	// Pages of two, while the log goes on: each page keeps the first one's
	// snapshot, and the writer catching up between pages changes nothing.
	var paged []string
	opts := &metainternalversion.ListOptions{Limit: 2}
	var remaining []int64
	for page := 0; ; page++ {
		l := list(opts)
		require.Equal(t, "13", l.ResourceVersion)
		paged = append(paged, names(l)...)
		if l.Continue == "" {
			break
		}
		remaining = append(remaining, *l.RemainingItemCount)
		opts = &metainternalversion.ListOptions{Limit: 2, Continue: l.Continue}
		put(eventlog.OpCreate, "ab", "Normal")
		put(eventlog.OpDelete, "e", "Normal")
		if page == 0 {
			wm.Advance(10)
		}
	}
	require.Equal(t, names(all), paged)
	require.Equal(t, []int64{3, 1}, remaining)

	wm.Advance(uint64(len(log.states)))
	require.Equal(t, names(all), names(list(&metainternalversion.ListOptions{ResourceVersion: "13", ResourceVersionMatch: metav1.ResourceVersionMatchExact})),
		"the same snapshot from the index alone, once committed")
}

// failingLog is a log whose reads fail: the end is unreadable (JetStream
// down) or the states after the watermark are too many to read.
type failingLog struct {
	memLog
	boundsErr, rangeErr error
}

func (l *failingLog) Bounds(ctx context.Context) (uint64, uint64, error) {
	if l.boundsErr != nil {
		return 0, 0, l.boundsErr
	}
	return l.memLog.Bounds(ctx)
}

func (l *failingLog) Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error) {
	if l.rangeErr != nil {
		return nil, l.rangeErr
	}
	return l.memLog.Range(ctx, filter, after, upto)
}

// A consistent list that cannot be served says so, with Retry-After: 503
// when the log does not answer, 504 when the writer is too far behind to
// merge; never a stale list. resourceVersion=0 still answers from the index.
func TestConsistentListRefusesRatherThanAnswerStale(t *testing.T) {
	log := &failingLog{}
	for i := range 3 {
		log.states = append(log.states, &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: "prod", Name: strconv.Itoa(i)},
			Op: eventlog.OpCreate, Seq: uint64(i + 1), Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: strconv.Itoa(i),
				CreationTimestamp: metav1.Now()}}})
	}
	wm := eventlog.NewWatermark()
	wm.Advance(1)
	r := NewREST(CoreV1, log, &memIndex{log: &log.memLog, wm: wm}, wm, scope.PlatformScopes{}, nil, DefaultOptions())
	ctx := genericapirequest.WithNamespace(context.Background(), "prod")

	log.rangeErr = fmt.Errorf("read states: 90000 pending, at most 50000: %w", eventlog.ErrRangeTooLong)
	_, err := r.List(ctx, &metainternalversion.ListOptions{})
	require.True(t, apierrors.IsTimeout(err), "504: %v", err)
	require.Contains(t, err.Error(), "a consistent list cannot be served now")
	secs, ok := apierrors.SuggestsClientDelay(err)
	require.True(t, ok && secs == 1, "Retry-After: 1")

	log.rangeErr = errors.New("context deadline exceeded")
	_, err = r.List(ctx, &metainternalversion.ListOptions{})
	require.True(t, apierrors.IsServiceUnavailable(err), "503: %v", err)

	log.rangeErr, log.boundsErr = nil, errors.New("nats: timeout")
	_, err = r.List(ctx, &metainternalversion.ListOptions{})
	require.True(t, apierrors.IsServiceUnavailable(err), "503: %v", err)
	secs, ok = apierrors.SuggestsClientDelay(err)
	require.True(t, ok && secs == 1, "Retry-After: 1")

	obj, err := r.List(ctx, &metainternalversion.ListOptions{ResourceVersion: "0"})
	require.NoError(t, err, "resourceVersion=0 reads the index alone")
	require.Len(t, obj.(*corev1.EventList).Items, 1)
}
