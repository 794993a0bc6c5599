package activity

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ktypes "k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/eventpipe/eventpipe/internal/audit"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// AuditVariables lists the names audit rules can use.
const AuditVariables = "audit, user, actor, verb, stage, code, objectRef, request, response, kind, namespace; functions: link(text, object), fieldPaths(object)"

// Sources of an Activity (ActivityOrigin.Source).
const (
	SourceEvent = "Event"
	SourceAudit = "Audit"
)

// auditNamePrefix starts the name of every Activity made from an audit
// record: audit-<auditID>, so one request has one Activity whatever how
// often kube-apiserver sent its record.
const auditNamePrefix = "audit-"

// fieldPathsFunc lists the leaf paths of an object, e.g. the fields a patch
// sets: "what changed" where the request body shows it.
const fieldPathsFunc = "fieldPaths"

var (
	auditEnvOnce                 sync.Once
	auditTextEnv, auditObjectEnv *cel.Env
	auditEnvErr                  error
)

func auditEnvs() (*cel.Env, *cel.Env, error) {
	auditEnvOnce.Do(func() {
		base := []cel.EnvOption{
			cel.Variable("audit", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("user", cel.StringType),
			cel.Variable("actor", cel.StringType),
			cel.Variable("verb", cel.StringType),
			cel.Variable("stage", cel.StringType),
			cel.Variable("code", cel.IntType),
			cel.Variable("objectRef", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("response", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("kind", cel.StringType),
			cel.Variable("namespace", cel.StringType),
			cel.Function(fieldPathsFunc, cel.Overload("fieldPaths_map", []*cel.Type{cel.DynType}, cel.ListType(cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					var out []string
					collectPaths(v, "", &out)
					sort.Strings(out)
					if len(out) > maxPaths {
						out = append(out[:maxPaths], "…")
					}
					return types.NewStringList(types.DefaultTypeAdapter, out)
				}))),
			ext.Strings(),
			cel.OptionalTypes(),
		}
		auditTextEnv, auditObjectEnv, auditEnvErr = linkEnvs(base)
	})
	return auditTextEnv, auditObjectEnv, auditEnvErr
}

// maxPaths bounds fieldPaths' answer: a summary names a few fields, not a
// whole object.
const maxPaths = 8

// collectPaths appends the dotted leaf paths of a CEL map (lists count as
// leaves) below prefix, skipping metadata bookkeeping a patch carries.
func collectPaths(v ref.Val, prefix string, out *[]string) {
	m, ok := v.(traits.Mapper)
	if !ok || len(*out) >= maxPaths*4 {
		if prefix != "" {
			*out = append(*out, prefix)
		}
		return
	}
	it := m.Iterator()
	n := 0
	for it.HasNext() == types.True {
		k := it.Next()
		ks, ok := k.(types.String)
		if !ok {
			continue
		}
		key := string(ks)
		p := key
		if prefix != "" {
			p = prefix + "." + key
		}
		n++
		switch p {
		case "metadata.resourceVersion", "metadata.managedFields", "metadata.creationTimestamp", "metadata.uid",
			"metadata.generation", "apiVersion", "kind", "status", "$setElementOrder", "$patch":
			continue
		}
		collectPaths(m.Get(k), p, out)
	}
	if n == 0 && prefix != "" { // an empty object set as a whole
		*out = append(*out, prefix)
	}
}

// auditVars is the activation of one audit record.
type auditVars struct {
	ev        *auditv1.Event
	auditMap  map[string]any
	objectRef map[string]string
	// request and response are decoded on first use: most records are
	// dropped by rules that never read the bodies.
	request, response map[string]any
	kind              string
	code              int64
}

var _ interpreter.Activation = (*auditVars)(nil)

func newAuditVars(ev *auditv1.Event) *auditVars {
	v := &auditVars{ev: ev, objectRef: auditRefMap(ev)}
	v.kind = v.objectRef["kind"]
	if ev.ResponseStatus != nil {
		v.code = int64(ev.ResponseStatus.Code)
	}
	return v
}

func (v *auditVars) ResolveName(name string) (any, bool) {
	switch name {
	case "audit":
		if v.auditMap == nil {
			v.auditMap = map[string]any{}
			if b, err := json.Marshal(v.ev); err == nil {
				_ = json.Unmarshal(b, &v.auditMap)
			}
		}
		return v.auditMap, true
	case "user", "actor":
		return v.ev.User.Username, true
	case "verb":
		return v.ev.Verb, true
	case "stage":
		return string(v.ev.Stage), true
	case "code":
		return v.code, true
	case "objectRef":
		return v.objectRef, true
	case "request":
		if v.request == nil {
			v.request = objectMap(v.ev.RequestObject)
		}
		return v.request, true
	case "response":
		if v.response == nil {
			v.response = objectMap(v.ev.ResponseObject)
		}
		return v.response, true
	case "kind":
		return v.kind, true
	case "namespace":
		return v.objectRef["namespace"], true
	}
	return nil, false
}

func (v *auditVars) Parent() interpreter.Activation { return nil }

// objectMap decodes a request or response body; absent or not JSON, it is
// empty, so rules read missing fields with has() or the ? operators.
func objectMap(u *runtime.Unknown) map[string]any {
	out := map[string]any{}
	if u != nil && len(u.Raw) > 0 {
		_ = json.Unmarshal(u.Raw, &out)
	}
	return out
}

// auditRefMap is objectRef with the object's kind added, every field a
// string ("" when absent).
func auditRefMap(ev *auditv1.Event) map[string]string {
	m := map[string]string{"resource": "", "subresource": "", "name": "", "namespace": "", "apiGroup": "", "apiVersion": "", "uid": "", "kind": ""}
	o := ev.ObjectRef
	if o == nil {
		return m
	}
	m["resource"], m["subresource"], m["name"], m["namespace"] = o.Resource, o.Subresource, o.Name, o.Namespace
	m["apiGroup"], m["apiVersion"], m["uid"] = o.APIGroup, o.APIVersion, string(o.UID)
	if o.APIGroup != "" && o.APIVersion != "" {
		m["apiVersion"] = o.APIGroup + "/" + o.APIVersion
	}
	m["kind"] = kindOf(ev)
	return m
}

// knownKinds maps the resources of the built-in API groups to their
// kinds, which audit records do not carry.
var knownKinds = map[string]string{
	"pods": "Pod", "services": "Service", "configmaps": "ConfigMap", "secrets": "Secret", "namespaces": "Namespace",
	"nodes": "Node", "serviceaccounts": "ServiceAccount", "persistentvolumeclaims": "PersistentVolumeClaim",
	"persistentvolumes": "PersistentVolume", "endpoints": "Endpoints", "events": "Event", "limitranges": "LimitRange",
	"resourcequotas": "ResourceQuota", "replicationcontrollers": "ReplicationController",
	"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
	"controllerrevisions": "ControllerRevision", "jobs": "Job", "cronjobs": "CronJob",
	"horizontalpodautoscalers": "HorizontalPodAutoscaler", "ingresses": "Ingress", "ingressclasses": "IngressClass",
	"networkpolicies": "NetworkPolicy", "poddisruptionbudgets": "PodDisruptionBudget",
	"roles": "Role", "rolebindings": "RoleBinding", "clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding",
	"customresourcedefinitions": "CustomResourceDefinition", "storageclasses": "StorageClass", "leases": "Lease",
	"priorityclasses": "PriorityClass", "endpointslices": "EndpointSlice", "apiservices": "APIService",
	"mutatingwebhookconfigurations": "MutatingWebhookConfiguration", "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
	"tokenreviews": "TokenReview", "subjectaccessreviews": "SubjectAccessReview",
	"selfsubjectaccessreviews": "SelfSubjectAccessReview", "selfsubjectrulesreviews": "SelfSubjectRulesReview",
	"certificatesigningrequests": "CertificateSigningRequest", "volumeattachments": "VolumeAttachment", "csinodes": "CSINode",
}

// kindOf is the kind of the object a request addressed (for a subresource,
// of its parent): known resources from the table, others from the body's
// kind, else the resource's name made singular and capitalised.
func kindOf(ev *auditv1.Event) string {
	o := ev.ObjectRef
	if o == nil || o.Resource == "" {
		return ""
	}
	if k, ok := knownKinds[o.Resource]; ok {
		return k
	}
	if o.Subresource == "" {
		for _, u := range []*runtime.Unknown{ev.ResponseObject, ev.RequestObject} {
			var tm metav1.TypeMeta
			if u != nil && json.Unmarshal(u.Raw, &tm) == nil && tm.Kind != "" && tm.Kind != "Status" && !strings.HasSuffix(tm.Kind, "List") && tm.Kind != "DeleteOptions" {
				return tm.Kind
			}
		}
	}
	r := o.Resource
	switch {
	case strings.HasSuffix(r, "ies"):
		r = strings.TrimSuffix(r, "ies") + "y"
	case strings.HasSuffix(r, "sses"), strings.HasSuffix(r, "ches"), strings.HasSuffix(r, "shes"):
		r = strings.TrimSuffix(r, "es")
	case strings.HasSuffix(r, "s"):
		r = strings.TrimSuffix(r, "s")
	}
	return strings.ToUpper(r[:1]) + r[1:]
}

// AuditOutcome is what the policies make of one audit record.
type AuditOutcome struct {
	Outcome
	// Keep is false when no rule matched or the first match drops.
	Keep bool
}

// EvaluateAudit tries the audit rules of the policies for the record's
// kind, in the order Evaluate uses; the first matching rule decides.
func (s *Set) EvaluateAudit(ev *auditv1.Event) AuditOutcome {
	v := newAuditVars(ev)
	var o AuditOutcome
	for _, p := range s.candidates(v.objectRef["apiGroup"], v.kind) {
		for _, r := range p.AuditRules {
			ok, err := r.matches(v)
			if err != nil {
				o.Errors = append(o.Errors, RuleError{Policy: p.Name, Rule: r.Name, Err: err})
				continue
			}
			if !ok {
				continue
			}
			if r.drop {
				o.Policy, o.Rule = p.Name, r.Name
				return o
			}
			summary, links, err := r.render(v)
			if err != nil {
				o.Errors = append(o.Errors, RuleError{Policy: p.Name, Rule: r.Name, Err: err})
				continue
			}
			o.Summary, o.Links, o.Policy, o.Rule, o.Keep = summary, links, p.Name, r.Name, true
			return o
		}
	}
	return o
}

// AuditActivityKey is where the Activity of an audit record lives: in the
// addressed object's namespace ("default" for cluster-scoped objects and
// non-resource requests, as Kubernetes files their events), named
// audit-<auditID>.
func AuditActivityKey(rec *audit.Record) Key {
	ns := ""
	if rec.Event.ObjectRef != nil {
		ns = rec.Event.ObjectRef.Namespace
	}
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return Key{Scope: rec.Scope, Namespace: ns, Name: auditNamePrefix + strings.ToLower(string(rec.Event.AuditID))}
}

// ActorType is "serviceaccount" for a service account's requests, else
// "user".
func ActorType(username string) string {
	if strings.HasPrefix(username, "system:serviceaccount:") {
		return "serviceaccount"
	}
	return "user"
}

// BuildAudit makes the Activity of an audit record from its outcome.
func BuildAudit(rec *audit.Record, o Outcome) *activityv1alpha1.Activity {
	ev := rec.Event
	k := AuditActivityKey(rec)
	when := ev.RequestReceivedTimestamp.Time
	ref := auditRefMap(ev)
	typ := "Normal"
	if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 400 || ev.Stage == auditv1.StagePanic {
		typ = "Warning"
	}
	return &activityv1alpha1.Activity{
		TypeMeta: metav1.TypeMeta{APIVersion: activityv1alpha1.SchemeGroupVersion.String(), Kind: "Activity"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: k.Namespace, Name: k.Name, UID: auditUID(rec),
			CreationTimestamp: metav1.NewTime(when.Truncate(time.Second)),
		},
		Spec: activityv1alpha1.ActivitySpec{
			Summary: o.Summary, Links: o.Links,
			Resource: activityv1alpha1.ActivityResource{APIGroup: ref["apiGroup"], APIVersion: ref["apiVersion"], Kind: ref["kind"],
				Namespace: ref["namespace"], Name: ref["name"], UID: ref["uid"]},
			Actor:  activityv1alpha1.ActivityActor{Type: ActorType(ev.User.Username), Name: ev.User.Username},
			Reason: ev.Verb, Type: typ, Count: 1,
			FirstSeen: metav1.NewTime(when), LastSeen: metav1.NewTime(when),
			Origin: activityv1alpha1.ActivityOrigin{Source: SourceAudit, AuditID: string(ev.AuditID),
				EventResourceVersion: strconv.FormatUint(rec.Seq, 10), Policy: o.Policy, Rule: o.Rule},
			Tenant: activityv1alpha1.ActivityTenant{Type: rec.Scope.Type, Name: rec.Scope.Name},
		},
	}
}

// auditUID is a stable uid for the Activity of one request in one scope,
// the same however often the record is processed.
func auditUID(rec *audit.Record) ktypes.UID {
	return ktypes.UID(uuid.NewSHA1(uuid.NameSpaceURL, []byte("audit/"+rec.Scope.Type+"/"+rec.Scope.Name+"/"+string(rec.Event.AuditID))).String())
}
