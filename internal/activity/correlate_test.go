package activity

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

func TestOwnersByName(t *testing.T) {
	pod := chstore.ObjectName{Kind: "Pod", Name: "web-7d9f-x2x4q"}
	require.True(t, ownedBy(pod, chstore.ObjectName{Kind: "ReplicaSet", Name: "web-7d9f"}))
	require.True(t, ownedBy(pod, chstore.ObjectName{Kind: "Deployment", Name: "web"}))
	require.False(t, ownedBy(chstore.ObjectName{Kind: "ReplicaSet", Name: "web-api-7d9f"}, chstore.ObjectName{Kind: "Deployment", Name: "web"}),
		"Deployment web-api's ReplicaSet is not web's")
	require.True(t, ownedBy(chstore.ObjectName{Kind: "Pod", Name: "db-0"}, chstore.ObjectName{Kind: "StatefulSet", Name: "db"}))
	require.Empty(t, owners(chstore.ObjectName{Kind: "Pod", Name: "solo"}))
}

// TestCorrelate ties a scale request to the events that followed it, both
// ways, against the real ClickHouse: the events about the Deployment and
// its ReplicaSet within the window, not an event before the request, one
// long after, another Deployment's, another tenant's, or a failed request.
func TestCorrelate(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	seq := uint64(0)
	var rows []chstore.ActivityRow
	add := func(sc scope.Scope, name, source, kind, obj, typ string, at time.Duration) *activityv1alpha1.Activity {
		seq++
		a := &activityv1alpha1.Activity{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name}, Spec: activityv1alpha1.ActivitySpec{
			Summary: name, Resource: activityv1alpha1.ActivityResource{Kind: kind, Name: obj}, Type: typ, Count: 1,
			FirstSeen: metav1.NewTime(t0.Add(at)), LastSeen: metav1.NewTime(t0.Add(at)),
			Origin: activityv1alpha1.ActivityOrigin{Source: source}, Tenant: activityv1alpha1.ActivityTenant{Type: sc.Type, Name: sc.Name}}}
		st := &State{Key: eventlog.Key{Scope: sc, Namespace: "prod", Name: name}, Activity: a, Seq: seq}
		row, err := st.Row()
		require.NoError(t, err)
		rows = append(rows, row)
		return a
	}
	create := add(alpha, "audit-0", SourceAudit, "Deployment", "web", "Normal", -2*time.Minute) // an earlier request: the scale ends what it caused
	scale := add(alpha, "audit-1", SourceAudit, "Deployment", "web", "Normal", 0)
	add(alpha, "audit-2", SourceAudit, "Deployment", "web", "Warning", time.Second) // failed: caused nothing
	add(beta, "audit-3", SourceAudit, "Deployment", "web", "Normal", 0)             // another tenant's
	scaled := add(alpha, "web.1", SourceEvent, "Deployment", "web", "Normal", 2*time.Second)
	created := add(alpha, "web-7d9f.1", SourceEvent, "ReplicaSet", "web-7d9f", "Normal", 3*time.Second)
	add(alpha, "web.0", SourceEvent, "Deployment", "web", "Normal", -time.Minute)            // before the request, after the create
	add(alpha, "web.9", SourceEvent, "Deployment", "web", "Normal", time.Hour/2)             // long after
	add(alpha, "web-api-1.1", SourceEvent, "ReplicaSet", "web-api-1", "Normal", time.Second) // Deployment web-api's
	require.NoError(t, s.InsertActivities(ctx, rows))

	require.NoError(t, Correlate(ctx, s, scale, 0))
	var names []string
	for _, r := range scale.Spec.Caused {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"web.1", "web-7d9f.1"}, names)
	require.Empty(t, scale.Spec.CausedBy)

	for _, ev := range []*activityv1alpha1.Activity{scaled, created} {
		require.NoError(t, Correlate(ctx, s, ev, 0))
		require.Len(t, ev.Spec.CausedBy, 1, ev.Name)
		require.Equal(t, "audit-1", ev.Spec.CausedBy[0].Name)
		require.Equal(t, "prod", ev.Spec.CausedBy[0].Namespace)
	}
	// The create caused web.0 only; the scale's events are the scale's.
	require.NoError(t, Correlate(ctx, s, create, 0))
	require.Len(t, create.Spec.Caused, 1)
	require.Equal(t, "web.0", create.Spec.Caused[0].Name)

	// As of an activity watermark before the events were indexed (they
	// are seq 5 and 6), the request is tied to nothing yet.
	early := scale.DeepCopy()
	require.NoError(t, Correlate(ctx, s, early, 4))
	require.Empty(t, early.Spec.Caused)
}
