package event

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// TestTransition is kube-apiserver's storage watch table: what a watch with
// a selector sends for each kind of state, including updates that move an
// event into or out of its selection.
func TestTransition(t *testing.T) {
	ev := func(typ string, lbl map[string]string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", ResourceVersion: "7", Labels: lbl}, Type: typ}
	}
	warning := newQuery(&metainternalversion.ListOptions{FieldSelector: kfields.OneTermEqualSelector("type", "Warning")})
	app := newQuery(&metainternalversion.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{"app": "web"})})
	all := newQuery(&metainternalversion.ListOptions{})
	for _, c := range []struct {
		name    string
		q       query
		rec     *eventlog.Record
		want    watch.EventType // "" when nothing is sent
		wantOld bool            // the object sent is the replaced state
	}{
		{"create matching", warning, &eventlog.Record{Op: eventlog.OpCreate, Event: ev("Warning", nil)}, watch.Added, false},
		{"create not matching", warning, &eventlog.Record{Op: eventlog.OpCreate, Event: ev("Normal", nil)}, "", false},
		{"delete matching", warning, &eventlog.Record{Op: eventlog.OpDelete, Event: ev("Warning", nil)}, watch.Deleted, false},
		{"delete not matching", warning, &eventlog.Record{Op: eventlog.OpDelete, Event: ev("Normal", nil)}, "", false},
		{"update, still matching", warning, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Warning", nil)}, watch.Modified, false},
		{"update, never matching", warning, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Normal", nil)}, "", false},
		{"update into the selection", warning, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Warning", nil), Prev: ev("Normal", nil)}, watch.Added, false},
		{"update out of the selection", warning, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Normal", nil), Prev: ev("Warning", nil)}, watch.Deleted, true},
		{"label added", app, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Normal", map[string]string{"app": "web"}), Prev: ev("Normal", nil)}, watch.Added, false},
		{"label removed", app, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Normal", nil), Prev: ev("Normal", map[string]string{"app": "web"})}, watch.Deleted, true},
		{"no selector", all, &eventlog.Record{Op: eventlog.OpUpdate, Event: ev("Normal", nil), Prev: ev("Warning", nil)}, watch.Modified, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.rec.Prev != nil {
				c.rec.Prev.ResourceVersion = ""
			}
			typ, obj := c.q.transition(c.rec)
			if c.want == "" {
				require.Nil(t, obj)
				return
			}
			require.Equal(t, c.want, typ)
			require.NotNil(t, obj)
			want := c.rec.Event
			if c.wantOld {
				want = c.rec.Prev
				require.NotSame(t, c.rec.Prev, obj, "the stored previous state is not handed out to be changed")
			}
			require.Equal(t, want.Type, obj.Type)
			require.Equal(t, want.Labels, obj.Labels)
			require.Equal(t, "7", obj.ResourceVersion, "sent at the update's resourceVersion")
		})
	}
}

func TestSelectionMayChange(t *testing.T) {
	base := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1"}, Type: "Normal", Reason: "Pulled", Count: 1}
	counted := base.DeepCopy()
	counted.Count, counted.Message = 2, "again"
	require.False(t, selectionMayChange(base, counted), "a count or message change is invisible to selectors")
	retyped := base.DeepCopy()
	retyped.Type = "Warning"
	require.True(t, selectionMayChange(base, retyped))
	labelled := base.DeepCopy()
	labelled.Labels = map[string]string{"a": "b"}
	require.True(t, selectionMayChange(base, labelled))
	require.False(t, selectionMayChange(base, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", Labels: map[string]string{}}, Type: "Normal", Reason: "Pulled"}),
		"no labels and empty labels are the same")
}
