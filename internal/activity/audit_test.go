package activity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/scope"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// auditEvent is a ResponseComplete record of user's verb on resource.
func auditEvent(user, verb, group, resource, sub, ns, name string, code int32, req, resp string) *auditv1.Event {
	ev := &auditv1.Event{
		AuditID: "0b1c2d3e-0000-4000-8000-000000000001", Stage: auditv1.StageResponseComplete, Level: auditv1.LevelRequestResponse,
		Verb: verb, User: authnv1.UserInfo{Username: user},
		ObjectRef:                &auditv1.ObjectReference{APIGroup: group, APIVersion: "v1", Resource: resource, Subresource: sub, Namespace: ns, Name: name},
		ResponseStatus:           &metav1.Status{Code: code},
		RequestReceivedTimestamp: metav1.NewMicroTime(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)),
	}
	if req != "" {
		ev.RequestObject = &runtime.Unknown{Raw: []byte(req)}
	}
	if resp != "" {
		ev.ResponseObject = &runtime.Unknown{Raw: []byte(resp)}
	}
	return ev
}

func TestBuiltinAuditPolicy(t *testing.T) {
	set, err := BuiltinSet()
	require.NoError(t, err)
	scaleResp := `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{"replicas":3},"status":{"replicas":1}}`
	forbidden := auditEvent("mallory", "list", "", "secrets", "", "prod", "", 403, "", "")
	forbidden.ResponseStatus.Message = "secrets is forbidden"
	received := auditEvent("alice", "create", "apps", "deployments", "", "prod", "web", 201, "", "")
	received.Stage = auditv1.StageRequestReceived
	failed := auditEvent("bob", "create", "", "configmaps", "", "prod", "app-config", 409, "", "")
	failed.ResponseStatus.Message = `configmaps "app-config" already exists`
	cases := []struct {
		name string
		ev   *auditv1.Event
		want string // "" means dropped
		rule string
		kind string
	}{
		{"scale", auditEvent("alice", "patch", "apps", "deployments", "scale", "prod", "web", 200, `{"spec":{"replicas":3}}`, scaleResp),
			"alice scaled Deployment web from 1 to 3", "scaled", "Deployment"},
		{"scale without bodies", auditEvent("alice", "update", "apps", "deployments", "scale", "prod", "web", 200, "", ""),
			"alice scaled Deployment web", "scaled", "Deployment"},
		{"delete", auditEvent("bob", "delete", "", "configmaps", "", "prod", "app-config", 200, "", ""),
			"bob deleted ConfigMap app-config", "deleted", "ConfigMap"},
		{"create", auditEvent("alice", "create", "apps", "deployments", "", "prod", "web", 201, "", ""),
			"alice created Deployment web", "created", "Deployment"},
		{"forbidden read", forbidden, "mallory was forbidden to list Secret in namespace prod", "forbidden", "Secret"},
		{"failed write", failed, `bob failed to create ConfigMap app-config: configmaps "app-config" already exists`, "failed", "ConfigMap"},
		{"patch names the fields", auditEvent("alice", "patch", "apps", "deployments", "", "prod", "web", 200,
			`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:2"}]}}},"metadata":{"resourceVersion":"5"}}`, ""),
			"alice changed spec.template.spec.containers of Deployment web", "patched", "Deployment"},
		{"exec", auditEvent("alice", "get", "", "pods", "exec", "prod", "web-1", 101, "", ""),
			"alice ran a command in Pod web-1", "exec", "Pod"},
		{"rbac", auditEvent("alice", "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "admins", 201, "", ""),
			"alice created ClusterRoleBinding admins", "created", "ClusterRoleBinding"},
		{"custom resource kind from body", auditEvent("alice", "create", "example.com", "widgets", "", "prod", "w", 201, "", `{"kind":"Widget","apiVersion":"example.com/v1"}`),
			"alice created Widget w", "created", "Widget"},
		{"read dropped", auditEvent("alice", "get", "apps", "deployments", "", "prod", "web", 200, "", ""), "", "read-only", ""},
		{"lease dropped", auditEvent("bob", "update", "coordination.k8s.io", "leases", "", "kube-system", "x", 200, "", ""), "", "noise", ""},
		{"control plane dropped", auditEvent("system:kube-controller-manager", "create", "apps", "replicasets", "", "prod", "web-1", 201, "", ""), "", "control-plane", ""},
		{"status dropped", auditEvent("bob", "patch", "", "pods", "status", "prod", "web-1", 200, "", ""), "", "noise", ""},
		{"early stage dropped", received, "", "final-stage-only", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := set.EvaluateAudit(c.ev)
			require.Empty(t, o.Errors)
			require.Equal(t, c.rule, o.Rule)
			if c.want == "" {
				require.False(t, o.Keep)
				return
			}
			require.True(t, o.Keep)
			require.Equal(t, c.want, o.Summary)
			a := BuildAudit(&audit.Record{Scope: scope.Scope{Type: "Project", Name: "p"}, Event: c.ev, Seq: 7}, o.Outcome)
			require.Equal(t, c.kind, a.Spec.Resource.Kind)
			require.Equal(t, SourceAudit, a.Spec.Origin.Source)
			require.Equal(t, "user", a.Spec.Actor.Type)
			require.Equal(t, "audit-"+string(c.ev.AuditID), a.Name)
		})
	}
}

func TestAuditActivityDetails(t *testing.T) {
	ev := auditEvent("system:serviceaccount:ci:deployer", "delete", "", "namespaces", "", "", "old", 200, "", "")
	rec := &audit.Record{Scope: scope.Scope{Type: "Project", Name: "p"}, Event: ev}
	a := BuildAudit(rec, Outcome{Summary: "x"})
	require.Equal(t, "serviceaccount", a.Spec.Actor.Type)
	require.Equal(t, "default", a.Namespace, "cluster-scoped objects' activities live in default, as their events do")
	require.Equal(t, "Normal", a.Spec.Type)
	again := BuildAudit(rec, Outcome{Summary: "x"})
	require.Equal(t, a.UID, again.UID, "one request has one uid however often it is processed")
	ev.ResponseStatus.Code = 500
	require.Equal(t, "Warning", BuildAudit(rec, Outcome{}).Spec.Type)
}

func TestAuditRuleValidation(t *testing.T) {
	p := &activityv1alpha1.ActivityPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: activityv1alpha1.ActivityPolicySpec{
		Resource:   activityv1alpha1.ActivityPolicyResource{Kind: "*", APIGroup: "*"},
		EventRules: []activityv1alpha1.ActivityPolicyRule{{Name: "e", Match: "true", Drop: true}},
		AuditRules: []activityv1alpha1.ActivityPolicyRule{
			{Name: "a", Match: "regarding.name == 'x'", Summary: "x"},
			{Name: "b", Match: "true", Drop: true, Summary: "x"},
			{Name: "c", Match: "verb == 'get'", Summary: "{{ user }} read {{ fieldPaths(request).join(',') }}"},
		}}}
	_, errs := Compile(p)
	msg := errs.ToAggregate().Error()
	require.Contains(t, msg, "spec.eventRules[0].drop: Forbidden: only audit rules may drop")
	require.Contains(t, msg, "spec.auditRules[0].match: Invalid value: \"regarding.name == 'x'\": column 1: undeclared reference to 'regarding'")
	require.Contains(t, msg, "(variables: audit, user, actor, verb")
	require.Contains(t, msg, "spec.auditRules[1].summary: Forbidden: a rule that drops writes no summary")
	require.NotContains(t, msg, "auditRules[2]")
}
