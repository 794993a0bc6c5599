package activity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

func TestTable(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a := v1alpha1.Activity{ObjectMeta: metav1.ObjectMeta{Name: "web.1", Namespace: "prod"}, Spec: v1alpha1.ActivitySpec{
		Summary: "Deployment web scaled replica set web-7d9f to 3", Count: 2,
		Resource: v1alpha1.ActivityResource{Kind: "Deployment", Name: "web"}, Actor: v1alpha1.ActivityActor{Name: "deployment-controller"},
		LastSeen: metav1.NewTime(now.Add(-90 * time.Second)), Origin: v1alpha1.ActivityOrigin{Policy: "builtin-deployment", Rule: "scaled"}}}
	tbl, err := toTable(&v1alpha1.ActivityList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}, Items: []v1alpha1.Activity{a}}, now)
	require.NoError(t, err)
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	require.Equal(t, []string{"Last Seen", "Summary", "Resource", "Actor", "Source", "Count"}, names)
	require.Equal(t, []any{"90s", a.Spec.Summary, "Deployment/web", "deployment-controller", "Event", int64(2), "web.1", "builtin-deployment/scaled"}, tbl.Rows[0].Cells)
	require.Equal(t, "7", tbl.ResourceVersion)
}

func TestContinueRoundTrip(t *testing.T) {
	tok := continueToken{RV: 9, TS: 1700000000, Nanos: 5, Namespace: "prod", Name: "a.1", ScopeType: "Project", ScopeName: "alpha"}
	got, err := decodeContinue(encodeContinue(tok))
	require.NoError(t, err)
	require.Equal(t, tok, *got)
	for _, bad := range []string{"", "!!", "e30", encodeContinue(continueToken{})} {
		_, err := decodeContinue(bad)
		require.Error(t, err, bad)
	}
}

func FuzzDecodeContinue(f *testing.F) {
	f.Add(encodeContinue(continueToken{RV: 1, Name: "x"}))
	f.Add("e30")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeContinue(s)
		if err != nil {
			return
		}
		// Whatever decodes is a usable position that encodes and decodes
		// to itself.
		again, err := decodeContinue(encodeContinue(*tok))
		require.NoError(t, err)
		require.Equal(t, *tok, *again)
	})
}
