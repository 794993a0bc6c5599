package listquery

import (
	"testing"

	"github.com/stretchr/testify/require"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

func TestQuery(t *testing.T) {
	sel, err := fields.ParseSelector("type=Warning,reason!=BackOff,reason==Pulled")
	require.NoError(t, err)
	lbl, err := labels.Parse("app=web")
	require.NoError(t, err)
	q := New(&metainternalversion.ListOptions{FieldSelector: sel, LabelSelector: lbl})
	require.ElementsMatch(t, []Cond{{Field: "type", Value: "Warning"}, {Field: "reason", Not: true, Value: "BackOff"}, {Field: "reason", Value: "Pulled"}}, q.Conds)

	set := func(typ, reason string) func() fields.Set {
		return func() fields.Set { return fields.Set{"type": typ, "reason": reason} }
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		fields func() fields.Set
		want   bool
	}{
		{"both match", map[string]string{"app": "web"}, set("Warning", "Pulled"), true},
		{"labels do not", map[string]string{"app": "db"}, set("Warning", "Pulled"), false},
		{"fields do not", map[string]string{"app": "web"}, set("Normal", "Pulled"), false},
	} {
		t.Run(c.name, func(t *testing.T) { require.Equal(t, c.want, q.Matches(c.labels, c.fields)) })
	}

	all := New(&metainternalversion.ListOptions{})
	require.Empty(t, all.Conds)
	require.True(t, all.Matches(nil, func() fields.Set { t.Fatal("no field selector, no field set"); return nil }))
}
