package apiserver

import (
	"github.com/eventpipe/eventpipe/internal/activity"
	registryactivity "github.com/eventpipe/eventpipe/internal/registry/activity"
	"github.com/eventpipe/eventpipe/internal/registry/activitypolicy"
	"github.com/eventpipe/eventpipe/internal/registry/policypreview"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// ActivityIndex is what the activity resources read from ClickHouse:
// activities, and recent events for previews.
type ActivityIndex interface {
	registryactivity.Index
	policypreview.Events
}

var _ ActivityIndex = (*chstore.Store)(nil)

// ActivityBackends are what the Activity resources read and write. With
// none, activities, activitypolicies and policypreviews are not served.
type ActivityBackends struct {
	// Log is the ACTIVITIES stream (activity.Reader).
	Log registryactivity.Log
	// Index is ClickHouse.
	Index ActivityIndex
	// Watermark is the activity indexer's committed watermark.
	Watermark registryactivity.Watermark
	// Policies is the policy bucket (activity.PolicyStore).
	Policies activitypolicy.Store
}

var _ activitypolicy.Store = (*activity.PolicyStore)(nil)
