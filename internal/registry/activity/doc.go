// Package activity is the REST storage of Activities
// (activity.miloapis.com/v1alpha1): read-only get, list and watch with the
// same list-watch contract as events. Lists read the latest state of each
// Activity from ClickHouse at the activity indexer's watermark, newest
// first; watches tail the ACTIVITIES stream from the list's
// resourceVersion. Reads are limited to the caller's scope.
package activity
