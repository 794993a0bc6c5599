package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		addTypes(s, &AuditLogQuery{})
		return nil
	})
}

// AuditLogQuery searches the stored audit log (the audit.k8s.io/v1 Events
// kube-apiserver's audit webhook sent) over an absolute or relative time
// range, up to the caller's tier query window. It is create-only and
// nothing is persisted: the answer to `kubectl create -f query.yaml -o
// yaml` carries the matching audit records in status.results, newest
// request first, each record (one stage of one request) once.
//
// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type AuditLogQuery struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata. The name is only echoed back; nothing is
	// stored under it.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the query.
	Spec AuditLogQuerySpec `json:"spec"`
	// Status is the answer, filled in by the server.
	// +optional
	Status AuditLogQueryStatus `json:"status,omitempty"`
}

// AuditLogQuerySpec is what to search for. Every filter is optional; the
// filters are ANDed, the values of one list ORed.
type AuditLogQuerySpec struct {
	// StartTime is where the window begins (inclusive), on each record's
	// requestReceivedTimestamp. Either an RFC 3339 time with any offset,
	// e.g. "2026-02-11T00:00:00Z", or a time relative to now: "now",
	// "now-30m", "now-2h", "now-7d", "now-1w" (units s, m, h, d, w). It
	// must lie within the caller's tier query window counted back from now
	// (60 days by default) and not in the future.
	StartTime string `json:"startTime"`
	// EndTime is where the window ends (exclusive), in the same forms as
	// startTime, e.g. "now". It must be after startTime and not in the
	// future.
	EndTime string `json:"endTime"`
	// User keeps the requests of one user, by user.username, e.g. "alice"
	// or "system:serviceaccount:kube-system:deployment-controller".
	// +optional
	User string `json:"user,omitempty"`
	// Verbs keeps requests with one of these Kubernetes verbs, e.g.
	// ["create", "update", "patch", "delete"]. Allowed: get, list, watch,
	// create, update, patch, delete, deletecollection, and any other
	// lower-case word (kube-apiserver logs e.g. "proxy").
	// +optional
	// +listType=atomic
	Verbs []string `json:"verbs,omitempty"`
	// Stages keeps records of these stages: RequestReceived,
	// ResponseStarted, ResponseComplete, Panic. Empty keeps every stage.
	// +optional
	// +listType=atomic
	Stages []string `json:"stages,omitempty"`
	// Resource keeps requests on one resource, by its plural lower-case
	// name as in objectRef.resource, e.g. "deployments", "configmaps".
	// +optional
	Resource string `json:"resource,omitempty"`
	// APIGroup, when set, keeps requests on resources of this API group,
	// e.g. "apps"; "" is the core group. Omitted: any group.
	// +optional
	APIGroup *string `json:"apiGroup,omitempty"`
	// Subresource, when set, keeps requests on this subresource, e.g.
	// "scale", "status", "exec"; "" keeps only requests on the resource
	// itself. Omitted: any. Requires resource.
	// +optional
	Subresource *string `json:"subresource,omitempty"`
	// Namespace keeps requests on objects in one namespace, e.g. "prod".
	// Empty: every namespace and cluster-scoped objects.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name keeps requests on objects of this name, e.g. "web".
	// +optional
	Name string `json:"name,omitempty"`
	// ResponseCodes keeps records whose responseStatus.code is one of
	// these: an HTTP status code ("404") or a class ("4xx", "5xx").
	// Records without a response (stage RequestReceived) have code 0 and
	// match none. Example: ["403", "5xx"].
	// +optional
	// +listType=atomic
	ResponseCodes []string `json:"responseCodes,omitempty"`
	// Limit is the most records one page returns: 1 to 1000, default 100.
	// +optional
	Limit int32 `json:"limit,omitempty"`
	// Continue fetches the next page: copy status.continue of the previous
	// answer here and keep every other field unchanged. A token is valid for
	// one hour, only for the query and the caller it was issued to.
	// +optional
	Continue string `json:"continue,omitempty"`
}

// AuditLogQueryStatus is the answer to an AuditLogQuery.
type AuditLogQueryStatus struct {
	// Results are the matching audit.k8s.io/v1 Events as kube-apiserver
	// sent them, newest requestReceivedTimestamp first (ties by auditID
	// and stage), each record once.
	// +optional
	// +listType=atomic
	Results []auditv1.Event `json:"results,omitempty"`
	// Continue, when set, fetches the next page: send the same query again
	// with spec.continue set to it. Empty on the last page.
	// +optional
	Continue string `json:"continue,omitempty"`
	// EffectiveStartTime is the absolute start of the window the server
	// searched (relative times resolved). Every page of one query uses the
	// window of its first page, so relative times do not slide.
	// +optional
	EffectiveStartTime *metav1.Time `json:"effectiveStartTime,omitempty"`
	// EffectiveEndTime is the absolute (exclusive) end of the window.
	// +optional
	EffectiveEndTime *metav1.Time `json:"effectiveEndTime,omitempty"`
	// ResourceVersion is the position in the audit log the answer
	// reflects: the audit indexer's committed watermark when the first
	// page was asked (every page of one query answers at it).
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
}
