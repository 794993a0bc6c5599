package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ActivityPolicy says how the events of one kind of resource become
// human-readable Activities: an ordered list of rules, each a CEL condition
// and a summary template. The first rule whose condition holds writes the
// Activity's summary. ActivityPolicy is cluster-scoped.
type ActivityPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy.
	Spec ActivityPolicySpec `json:"spec"`
}

// ActivityPolicySpec is what a policy applies to and its rules.
type ActivityPolicySpec struct {
	// Resource selects the events the policy applies to, by the kind of the
	// object they are about (regarding / involvedObject). "*" for apiGroup or
	// kind matches any.
	Resource ActivityPolicyResource `json:"resource"`
	// EventRules are tried in order; the first whose match is true wins.
	// +listType=map
	// +listMapKey=name
	EventRules []ActivityPolicyRule `json:"eventRules"`
}

// ActivityPolicyResource names a kind of Kubernetes resource.
type ActivityPolicyResource struct {
	// APIGroup is the kind's API group: "" for the core group, "apps",
	// "batch", …, or "*" for any group.
	// +optional
	APIGroup string `json:"apiGroup"`
	// Kind is the resource kind, e.g. Deployment, or "*" for any kind.
	Kind string `json:"kind"`
}

// ActivityPolicyRule turns matching events into a summary.
type ActivityPolicyRule struct {
	// Name identifies the rule within the policy (a DNS-1123 label). Dead
	// letters and metrics name it.
	Name string `json:"name"`
	// Match is a CEL expression that returns bool. Variables: event,
	// regarding, related, actor, count, kind, namespace.
	Match string `json:"match"`
	// Summary is the Activity's text: literal text with {{ CEL }} parts,
	// e.g. "Deployment {{ regarding.name }} scaled". The function
	// link(text, object) returns text and records a link to object.
	Summary string `json:"summary"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ActivityPolicyList is a list of ActivityPolicies.
type ActivityPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the policies.
	Items []ActivityPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &ActivityPolicy{}, &ActivityPolicyList{})
		return nil
	})
}
