package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PolicyPreview evaluates a draft ActivityPolicy without storing anything:
// create one and the answer's status holds the summaries the policy would
// write for the given events, or for the newest stored events of the
// policy's kind.
type PolicyPreview struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the draft and its input.
	Spec PolicyPreviewSpec `json:"spec"`
	// Status is the answer.
	// +optional
	Status PolicyPreviewStatus `json:"status,omitempty"`
}

// PolicyPreviewSpec is a draft policy and the events to try it on.
type PolicyPreviewSpec struct {
	// Policy is the draft.
	Policy ActivityPolicySpec `json:"policy"`
	// Events to evaluate. When empty, the newest Limit stored events whose
	// regarding object is of the policy's kind are used.
	// +optional
	// +listType=atomic
	Events []corev1.Event `json:"events,omitempty"`
	// Limit is how many stored events to use when Events is empty: 1-1000,
	// default 20.
	// +optional
	Limit int32 `json:"limit,omitempty"`
}

// PolicyPreviewStatus holds one result per event, in input order.
type PolicyPreviewStatus struct {
	// Results are the summaries.
	// +optional
	// +listType=atomic
	Results []PolicyPreviewResult `json:"results,omitempty"`
}

// PolicyPreviewResult is what the draft makes of one event.
type PolicyPreviewResult struct {
	// EventNamespace is the event's namespace.
	// +optional
	EventNamespace string `json:"eventNamespace,omitempty"`
	// EventName is the event's name.
	// +optional
	EventName string `json:"eventName,omitempty"`
	// Rule is the rule that matched; empty when none did.
	// +optional
	Rule string `json:"rule,omitempty"`
	// Summary is the text the rule wrote.
	// +optional
	Summary string `json:"summary,omitempty"`
	// Links are the summary's links.
	// +optional
	// +listType=atomic
	Links []ActivityLink `json:"links,omitempty"`
	// Error is the evaluation error of a rule, if one failed.
	// +optional
	Error string `json:"error,omitempty"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &PolicyPreview{})
		return nil
	})
}
