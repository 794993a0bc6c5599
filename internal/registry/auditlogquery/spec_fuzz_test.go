package auditlogquery

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// FuzzParseSpec: whatever a caller sends in the filters, parseSpec never
// panics, every error names a spec field, and a spec it accepts becomes a
// store query that says exactly what the spec said.
func FuzzParseSpec(f *testing.F) {
	f.Add("alice", "delete", "ResponseComplete", "deployments", "apps", "scale", "prod", "web", "4xx", true)
	f.Add("", "GET", "Done", "Deployments", "Apps!", "a/b", "Prod", strings.Repeat("n", 300), "6xx", false)
	f.Add("u", "", "", "", "", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, user, verb, stage, resource, group, sub, ns, name, code string, pointers bool) {
		spec := v1alpha1.AuditLogQuerySpec{User: user, Resource: resource, Namespace: ns, Name: name}
		for _, v := range strings.Split(verb, ",") {
			if v != "" {
				spec.Verbs = append(spec.Verbs, v)
			}
		}
		if stage != "" {
			spec.Stages = []string{stage}
		}
		if code != "" {
			spec.ResponseCodes = strings.Split(code, ",")
		}
		if pointers {
			spec.APIGroup, spec.Subresource = &group, &sub
		}
		p := field.NewPath("spec")
		q, errs := parseSpec(p, &spec)
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "spec.") {
				t.Fatalf("error without a spec field: %v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		if q.User != user || q.Resource != resource || q.Name != name {
			t.Fatalf("query %+v does not say what the spec %+v said", q, spec)
		}
		if (ns == "") != (q.Namespace == nil) || (q.Namespace != nil && *q.Namespace != ns) {
			t.Fatalf("namespace %q became %v", ns, q.Namespace)
		}
		if len(q.Codes) != len(spec.ResponseCodes) || len(q.Verbs) != len(spec.Verbs) || len(q.Stages) != len(spec.Stages) {
			t.Fatalf("lists changed length: %+v from %+v", q, spec)
		}
		for _, v := range q.Verbs {
			if v == "" || strings.ToLower(v) != v || strings.ContainsAny(v, " ,;'\"\\") {
				t.Fatalf("verb %q accepted", v)
			}
		}
		for _, c := range q.Codes {
			if c.Min < 100 || c.Max > 599 || c.Min > c.Max {
				t.Fatalf("code range %+v accepted", c)
			}
		}
		if q.Subresource != nil && resource == "" {
			t.Fatalf("subresource without resource accepted")
		}
	})
}
