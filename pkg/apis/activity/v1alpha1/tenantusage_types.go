package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &TenantUsage{}, &TenantUsageList{})
		return nil
	})
}

// TenantUsage shows a tenant its tier and how much of it is used: storage
// against the quota, the query window and retention, and the rate limits.
// It is read-only and cluster-scoped. A tenant user sees one, its own,
// named after its scope ("project.alpha" for Project/alpha); platform users
// see every tenant eventpipe knows of (in the tiers file or with stored
// events).
//
// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=get,list
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type TenantUsage struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; the name is the scope type in lower case, a
	// dot, and the scope name, e.g. "project.alpha".
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Status is the tenant's tier and usage.
	// +optional
	Status TenantUsageStatus `json:"status,omitempty"`
}

// TenantUsageStatus is a tenant's tier and usage.
type TenantUsageStatus struct {
	// ScopeType is the tenant's type: Organization, Project or User.
	ScopeType string `json:"scopeType"`
	// ScopeName is the tenant's name, e.g. "alpha".
	ScopeName string `json:"scopeName"`
	// Tier is the tier the tenant is on, e.g. "Free", "Pro", "Enterprise".
	Tier string `json:"tier"`
	// Overridden is true when the tiers file overrides some of the tier's
	// limits for this tenant.
	// +optional
	Overridden bool `json:"overridden,omitempty"`
	// StorageUsedBytes is the tenant's stored events, in bytes: what
	// ClickHouse held at the last measurement plus writes accepted since.
	StorageUsedBytes int64 `json:"storageUsedBytes"`
	// StorageQuotaBytes is the tier's storage quota in bytes; -1 means
	// unlimited. Writes that would go beyond it are refused with 403.
	StorageQuotaBytes int64 `json:"storageQuotaBytes"`
	// QueryWindow is how far back EventQuery and EventFacetQuery may look,
	// e.g. "24h", "60d".
	QueryWindow string `json:"queryWindow"`
	// Retention is how long events are kept after their last observation,
	// e.g. "60d".
	Retention string `json:"retention"`
	// RateLimitSoftPerMinute is the event writes per minute above which
	// writes are accepted with a warning; -1 means unlimited.
	RateLimitSoftPerMinute int64 `json:"rateLimitSoftPerMinute"`
	// RateLimitHardPerMinute is the event writes per minute above which
	// writes are refused with 429; -1 means unlimited.
	RateLimitHardPerMinute int64 `json:"rateLimitHardPerMinute"`
}

// TenantUsageList is a list of TenantUsage.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type TenantUsageList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the tenants' usages.
	Items []TenantUsage `json:"items"`
}
