package tiers_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/eventpipe/eventpipe/internal/tiers"
)

func TestAPIErrors(t *testing.T) {
	free := tiers.Default().For(alpha)
	events := schema.GroupResource{Resource: "events"}

	q := tiers.QuotaExceeded(events, "e1", free, 1<<30-10, 200)
	require.True(t, apierrors.IsForbidden(q))
	require.EqualValues(t, http.StatusForbidden, q.Status().Code)
	require.Equal(t, "storage quota of tier Free exceeded for Project/alpha: used 1024.00 MiB (1073741814 bytes) of 1.00 GiB (1073741824 bytes), "+
		"this write needs 200 bytes more; delete old events or ask for a larger tier", q.Error())
	require.Equal(t, tiers.CauseStorageQuota, q.Status().Details.Causes[len(q.Status().Details.Causes)-1].Type)

	r := tiers.TooManyRequests(free, 2300*time.Millisecond)
	require.True(t, apierrors.IsTooManyRequests(r))
	require.EqualValues(t, 3, r.Status().Details.RetryAfterSeconds, "rounded up")
	require.Contains(t, r.Error(), "rate limit of tier Free exceeded for Project/alpha: more than 500 events in this minute")
	require.Contains(t, r.Error(), "retry after 3s")
	require.EqualValues(t, 1, tiers.TooManyRequests(free, 0).Status().Details.RetryAfterSeconds)

	require.Equal(t, "Project/alpha (tier Free) wrote 101 events this minute, above the soft rate limit of 100/min; "+
		"writes above the hard limit of 500/min are refused until the minute ends", tiers.RateWarning(free, 101))

	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	gk := schema.GroupKind{Group: "activity.miloapis.com", Kind: "EventQuery"}
	require.Nil(t, tiers.CheckQueryStart(gk, "q", free, now.Add(-24*time.Hour), now), "exactly the window is allowed")
	e := tiers.CheckQueryStart(gk, "q", free, now.Add(-24*time.Hour-time.Second), now)
	require.NotNil(t, e)
	require.True(t, apierrors.IsInvalid(e))
	require.EqualValues(t, http.StatusUnprocessableEntity, e.Status().Code)
	require.Equal(t, "spec.startTime", e.Status().Details.Causes[0].Field)
	require.Contains(t, e.Error(), "tier Free allows queries over the last 24h (from 2026-11-24T10:00:00Z)")
	require.Nil(t, tiers.CheckQueryStart(gk, "q", tiers.Default().For(scopePlatform()), time.Unix(0, 0), now), "platform: no window")
}
