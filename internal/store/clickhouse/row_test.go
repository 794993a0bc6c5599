package clickhouse

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

func TestRowRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	full := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", UID: "u1", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{"x": "y"}, CreationTimestamp: metav1.NewTime(now.Truncate(time.Second))},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "prod", Name: "web", UID: "p1", APIVersion: "v1",
			ResourceVersion: "42", FieldPath: "spec.containers{app}"},
		Reason: "Started", Message: "Started container app", Type: "Normal",
		Source:         corev1.EventSource{Component: "kubelet", Host: "n1"},
		FirstTimestamp: metav1.NewTime(now.Truncate(time.Second)), LastTimestamp: metav1.NewTime(now.Truncate(time.Second)),
		Count: 3, EventTime: metav1.NewMicroTime(now), Action: "Start", ReportingController: "kubelet", ReportingInstance: "n1",
		Series:  &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(now.Add(time.Second))},
		Related: &corev1.ObjectReference{Kind: "Node", Name: "n1"},
	}
	cases := map[string]*corev1.Event{
		"full":          full,
		"empty related": func() *corev1.Event { e := full.DeepCopy(); e.Related = &corev1.ObjectReference{}; return e }(),
		"minimal":       {ObjectMeta: metav1.ObjectMeta{Name: "n"}},
		"cluster-scoped": {ObjectMeta: metav1.ObjectMeta{Namespace: "", Name: "node.1"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "worker-3"}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &eventlog.Record{Key: eventlog.Key{Scope: scope.Scope{Type: scope.TypeProject, Name: "p"}, Namespace: ev.Namespace, Name: ev.Name},
				Op: eventlog.OpUpdate, Event: ev.DeepCopy(), Seq: 77}
			row, err := EncodeRow(rec, now)
			require.NoError(t, err)
			back, err := DecodeRow(&row)
			require.NoError(t, err)
			want := ev.DeepCopy()
			want.ResourceVersion = "77"
			// Compare encodings: decoded times come back in time.Local.
			wantPB, err := want.Marshal()
			require.NoError(t, err)
			gotPB, err := back.Event.Marshal()
			require.NoError(t, err)
			require.Equal(t, wantPB, gotPB)
			require.Equal(t, rec.Key, back.Key)
			require.Equal(t, rec.Op, back.Op)
		})
	}
}

func TestLastObserved(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d int) time.Time { return t0.Add(time.Duration(d) * time.Minute) }
	cases := []struct {
		name string
		ev   corev1.Event
		want time.Time
	}{
		{"series wins", corev1.Event{Series: &corev1.EventSeries{LastObservedTime: metav1.NewMicroTime(at(5))}, LastTimestamp: metav1.NewTime(at(4))}, at(5)},
		{"lastTimestamp", corev1.Event{LastTimestamp: metav1.NewTime(at(4)), EventTime: metav1.NewMicroTime(at(3))}, at(4)},
		{"eventTime", corev1.Event{EventTime: metav1.NewMicroTime(at(3)), FirstTimestamp: metav1.NewTime(at(2))}, at(3)},
		{"firstTimestamp", corev1.Event{FirstTimestamp: metav1.NewTime(at(2))}, at(2)},
		{"creation", corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(at(1))}}, at(1)},
		{"fallback", corev1.Event{}, at(9)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.True(t, c.want.Equal(LastObserved(&c.ev, at(9))))
		})
	}
}
