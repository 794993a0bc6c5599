package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// +genclient
// +genclient:onlyVerbs=get,list,watch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Activity is one line of the human-readable timeline: what one Kubernetes
// Event says, or what one request to kube-apiserver did (from its audit
// record), in words an ActivityPolicy chose. There is one Activity per
// event and per kept request; when the event repeats, its Activity's count
// and last seen time follow. Activities are made by the activity processor
// and are read-only.
type Activity struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the activity.
	Spec ActivitySpec `json:"spec"`
}

// ActivitySpec is what happened.
type ActivitySpec struct {
	// Summary is the human-readable line.
	Summary string `json:"summary"`
	// Links are the objects the summary refers to, in the order the
	// summary's link() calls named them.
	// +optional
	// +listType=atomic
	Links []ActivityLink `json:"links,omitempty"`
	// Resource is the object the event was about.
	Resource ActivityResource `json:"resource"`
	// Actor is who reported the event.
	Actor ActivityActor `json:"actor"`
	// Reason is the event's reason, e.g. ScalingReplicaSet; for a request,
	// its verb, e.g. patch.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Type is the event's type: Normal or Warning; for a request, Warning
	// when it failed or was forbidden.
	// +optional
	Type string `json:"type,omitempty"`
	// Count is how many times the event was observed.
	Count int32 `json:"count"`
	// FirstSeen is when the event was first observed.
	// +optional
	FirstSeen metav1.Time `json:"firstSeen,omitempty"`
	// LastSeen is when the event was last observed.
	// +optional
	LastSeen metav1.Time `json:"lastSeen,omitempty"`
	// Origin says which event and which rule made the activity.
	Origin ActivityOrigin `json:"origin"`
	// Tenant is the scope the event belongs to.
	// +optional
	Tenant ActivityTenant `json:"tenant,omitempty"`
	// CausedBy, on an Activity made from an Event, are the Activities of
	// the requests that likely caused the event: requests to the same
	// object or an owner of it (Deployment → ReplicaSet → Pod, by name)
	// shortly before. Filled in when the Activity is read.
	// +optional
	// +listType=atomic
	CausedBy []ActivityReference `json:"causedBy,omitempty"`
	// Caused, on an Activity made from an audit record, are the Activities
	// of the events the request likely caused, by the same rule the other
	// way round. Filled in when the Activity is read.
	// +optional
	// +listType=atomic
	Caused []ActivityReference `json:"caused,omitempty"`
}

// ActivityReference names another Activity.
type ActivityReference struct {
	// Namespace is the Activity's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name is the Activity's name.
	Name string `json:"name"`
	// Summary is the Activity's summary.
	// +optional
	Summary string `json:"summary,omitempty"`
	// Time is when what the Activity tells of happened (its firstSeen).
	// +optional
	Time metav1.Time `json:"time,omitempty"`
}

// ActivityResource identifies a Kubernetes object.
type ActivityResource struct {
	// APIGroup is the object's API group ("" for core).
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// APIVersion is the object's apiVersion, e.g. apps/v1.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is the object's kind.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Namespace is the object's namespace; empty for cluster-scoped objects.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	// +optional
	Name string `json:"name,omitempty"`
	// UID is the object's uid.
	// +optional
	UID string `json:"uid,omitempty"`
}

// ActivityLink ties a piece of the summary to an object.
type ActivityLink struct {
	// Marker is the text of the summary that refers to the object.
	Marker string `json:"marker"`
	// Resource is the object.
	Resource ActivityResource `json:"resource"`
}

// ActivityActor is who made the event happen or reported it.
type ActivityActor struct {
	// Type is "controller" for events reported by a controller or kubelet;
	// for requests, "serviceaccount" when a service account made it, else
	// "user".
	// +optional
	Type string `json:"type,omitempty"`
	// Name is the reporting controller or component, e.g.
	// deployment-controller, or the requesting user's name.
	// +optional
	Name string `json:"name,omitempty"`
}

// ActivityOrigin is where an activity came from.
type ActivityOrigin struct {
	// Source is Event or Audit: what the Activity was made from. Empty
	// means Event (Activities made before audit records were kept).
	// +optional
	Source string `json:"source,omitempty"`
	// EventName is the source event's name (in the activity's namespace);
	// empty for an Activity made from an audit record.
	// +optional
	EventName string `json:"eventName,omitempty"`
	// AuditID is the source request's auditID, for an Activity made from
	// an audit record.
	// +optional
	AuditID string `json:"auditID,omitempty"`
	// EventUID is the source event's uid.
	// +optional
	EventUID string `json:"eventUID,omitempty"`
	// EventResourceVersion is the source event state's resourceVersion
	// (for an audit record, its position in the audit log).
	// +optional
	EventResourceVersion string `json:"eventResourceVersion,omitempty"`
	// Policy is the ActivityPolicy that wrote the summary.
	// +optional
	Policy string `json:"policy,omitempty"`
	// Rule is the policy rule that wrote the summary.
	// +optional
	Rule string `json:"rule,omitempty"`
}

// ActivityTenant is the scope (project, organization, …) an activity
// belongs to.
type ActivityTenant struct {
	// Type is the scope type, e.g. Project or Platform.
	// +optional
	Type string `json:"type,omitempty"`
	// Name is the scope name.
	// +optional
	Name string `json:"name,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ActivityList is a list of Activities, newest first.
type ActivityList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the activities.
	Items []Activity `json:"items"`
}

// ActivityFieldLabels are the field selectors Activities support, beside
// metadata.name and metadata.namespace.
var ActivityFieldLabels = []string{"spec.resource.kind", "spec.resource.name", "spec.actor.name", "spec.reason"}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &Activity{}, &ActivityList{})
		return s.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("Activity"), func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace":
				return label, value, nil
			}
			for _, l := range ActivityFieldLabels {
				if l == label {
					return label, value, nil
				}
			}
			return "", "", fmt.Errorf("field label not supported: %s (allowed: metadata.name, metadata.namespace, spec.resource.kind, spec.resource.name, spec.actor.name, spec.reason)", label)
		})
	})
}
