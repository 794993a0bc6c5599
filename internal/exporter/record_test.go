package exporter

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

func TestMsgID(t *testing.T) {
	create := MsgID("prod", "u1", "42", eventlog.OpCreate)
	require.Equal(t, "export/prod/u1/42", create)
	require.Equal(t, create, MsgID("prod", "u1", "42", eventlog.OpUpdate), "the same source state has one id, however it was seen")
	require.Equal(t, "export/prod/u1/42/delete", MsgID("prod", "u1", "42", eventlog.OpDelete), "a delete has its own id")
	require.NotEqual(t, create, MsgID("prod", "u1", "43", eventlog.OpUpdate))
	require.NotEqual(t, create, MsgID("prod", "u2", "42", eventlog.OpCreate))
}

func TestExportedRecord(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "n.1", UID: "u", ResourceVersion: "17",
		Labels: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}}, Reason: "R", Count: 2}
	sc := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	rec := exportedRecord("prod", sc, change{op: eventlog.OpUpdate, ev: ev})
	require.Equal(t, eventlog.Key{Scope: sc, Namespace: "ns", Name: "n.1"}, rec.Key)
	require.Equal(t, map[string]string{"a": "b", LabelSourceCluster: "prod"}, rec.Event.Labels)
	require.Equal(t, "17", rec.Event.Annotations[AnnotationSourceResourceVersion])
	require.Empty(t, rec.Event.ResourceVersion)
	require.Nil(t, rec.Event.ManagedFields)
	require.Equal(t, "17", ev.ResourceVersion, "the source object is not modified")
	require.Len(t, ev.Labels, 1)
	v, ok := sourceVersion(rec.Event)
	require.True(t, ok)
	require.EqualValues(t, 17, v)
}

func TestOpForListed(t *testing.T) {
	require.Equal(t, eventlog.OpCreate, opForListed(&corev1.Event{Count: 1}))
	require.Equal(t, eventlog.OpCreate, opForListed(&corev1.Event{}))
	require.Equal(t, eventlog.OpUpdate, opForListed(&corev1.Event{Count: 2}))
	require.Equal(t, eventlog.OpUpdate, opForListed(&corev1.Event{Series: &corev1.EventSeries{Count: 2}}))
}

func TestParseResourceVersion(t *testing.T) {
	for _, good := range []string{"0", "1", "18446744073709551615"} {
		_, err := ParseResourceVersion(good)
		require.NoError(t, err, good)
	}
	for _, bad := range []string{"", "-1", "007", "1.5", "abc", "18446744073709551616", " 1"} {
		_, err := ParseResourceVersion(bad)
		require.Error(t, err, bad)
	}
}

func FuzzParseResourceVersion(f *testing.F) {
	for _, s := range []string{"0", "42", "007", "", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseResourceVersion(s)
		if err != nil {
			return
		}
		// Only the canonical spelling is accepted, so versions compare as
		// numbers exactly when they compare as strings of equal length.
		if strconv.FormatUint(n, 10) != s {
			t.Fatalf("ParseResourceVersion(%q) = %d, which is spelled %q", s, n, strconv.FormatUint(n, 10))
		}
	})
}

func TestIsExpiry(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-ago)); return &t }
	written := func(agos ...time.Duration) *corev1.Event {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(3 * time.Hour)}}
		for _, a := range agos {
			ev.ManagedFields = append(ev.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubelet", Time: at(a)})
		}
		return ev
	}
	for _, c := range []struct {
		name string
		ev   *corev1.Event
		ttl  time.Duration
		want bool
	}{
		{"deleted seconds after its last write", written(2*time.Hour, 5*time.Second), time.Hour, false},
		{"deleted a TTL after its last write", written(2*time.Hour, 61*time.Minute), time.Hour, true},
		{"within the slack of a minute", written(59*time.Minute + 30*time.Second), time.Hour, true},
		{"just before the slack", written(58 * time.Minute), time.Hour, false},
		{"short TTL, slack a tenth of it", written(9500 * time.Millisecond), 10 * time.Second, true},
		{"short TTL, deleted early", written(8 * time.Second), 10 * time.Second, false},
		{"TTL 0 exports every delete", written(48 * time.Hour), 0, false},
		{"no managedFields: the event's own times", &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(3 * time.Hour)},
			LastTimestamp: *at(2 * time.Minute)}, time.Hour, false},
		{"no managedFields, series observed long ago", &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(3 * time.Hour)},
			Series: &corev1.EventSeries{LastObservedTime: metav1.NewMicroTime(now.Add(-90 * time.Minute))}}, time.Hour, true},
		{"no time at all", &corev1.Event{}, time.Hour, false},
	} {
		if got := isExpiry(c.ev, c.ttl, now); got != c.want {
			t.Errorf("%s: isExpiry = %v, want %v", c.name, got, c.want)
		}
	}
}
