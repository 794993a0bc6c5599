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
	// object they are about (regarding / involvedObject), and the audit
	// records, by the kind of the object the request addressed
	// (objectRef; for a subresource such as deployments/scale, the kind of
	// the parent object). "*" for apiGroup or kind matches any.
	Resource ActivityPolicyResource `json:"resource"`
	// EventRules are tried in order on each Kubernetes Event; the first
	// whose match is true wins. Every event gets an Activity: when no rule
	// of any policy matches, a plain line is written.
	// +optional
	// +listType=map
	// +listMapKey=name
	EventRules []ActivityPolicyRule `json:"eventRules,omitempty"`
	// AuditRules are tried in order on each kube-apiserver audit record;
	// the first whose match is true wins. A record no rule matches, or whose
	// first matching rule has drop set, makes no Activity. At least one of
	// eventRules and auditRules is required.
	// +optional
	// +listType=map
	// +listMapKey=name
	AuditRules []ActivityPolicyRule `json:"auditRules,omitempty"`
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

// ActivityPolicyRule turns matching events or audit records into a
// summary.
type ActivityPolicyRule struct {
	// Name identifies the rule within the policy (a DNS-1123 label). Dead
	// letters and metrics name it.
	Name string `json:"name"`
	// Match is a CEL expression that returns bool. Variables of event
	// rules: event, regarding, related, actor, count, kind, namespace. Of
	// audit rules: audit, user, actor, verb, stage, code, objectRef,
	// request, response, kind, namespace.
	Match string `json:"match"`
	// Summary is the Activity's text: literal text with {{ CEL }} parts,
	// e.g. "Deployment {{ regarding.name }} scaled". The function
	// link(text, object) returns text and records a link to object. Not
	// used when drop is set.
	// +optional
	Summary string `json:"summary,omitempty"`
	// Drop, in an audit rule, makes a matching record produce no Activity
	// (read-only and noisy requests). Event rules cannot drop: every event
	// has its Activity.
	// +optional
	Drop bool `json:"drop,omitempty"`
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
