// Package v1alpha1 is the activity.miloapis.com/v1alpha1 API: queries over
// stored history (EventQuery, EventFacetQuery) and the human-readable
// timeline made from events (ActivityPolicy, Activity, PolicyPreview).
//
// Each resource's types live in their own file and register themselves with
// SchemeBuilder from that file's init, so the files can grow independently.
// The same Go types also serve as the group's internal version (there is
// only one version, so there is nothing to convert between).
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=com.miloapis.activity.v1alpha1
// +groupName=activity.miloapis.com
package v1alpha1
