package auditlogquery

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Bounds of the spec's lists and strings.
const (
	MaxListItems = 20
	MaxNameBytes = 253
	MaxUserBytes = 1024
)

// Stages are the audit stages kube-apiserver records.
var Stages = []string{"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}

// ParseCode reads one spec.responseCodes item: an HTTP status code from 100
// to 599 ("404") or a class ("4xx", "5xx"; 1xx to 5xx).
func ParseCode(s string) (chstore.CodeRange, error) {
	const want = `want an HTTP status code from 100 to 599 ("404") or a class from "1xx" to "5xx"`
	if len(s) != 3 {
		return chstore.CodeRange{}, fmt.Errorf("%q: %s", s, want)
	}
	if s[1:] == "xx" {
		if s[0] < '1' || s[0] > '5' {
			return chstore.CodeRange{}, fmt.Errorf("%q: %s", s, want)
		}
		base := int32(s[0]-'0') * 100
		return chstore.CodeRange{Min: base, Max: base + 99}, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 100 || n > 599 || s[0] == '+' || s[0] == '-' {
		return chstore.CodeRange{}, fmt.Errorf("%q: %s", s, want)
	}
	return chstore.CodeRange{Min: int32(n), Max: int32(n)}, nil
}

// parseSpec checks every filter of spec (the window, limit and cursor are
// the caller's) and returns them as a store query, with every problem on
// its field.
func parseSpec(p *field.Path, spec *v1alpha1.AuditLogQuerySpec) (chstore.AuditQuery, field.ErrorList) {
	var q chstore.AuditQuery
	var errs field.ErrorList
	if len(spec.User) > MaxUserBytes {
		errs = append(errs, field.TooLong(p.Child("user"), "", MaxUserBytes))
	}
	q.User = spec.User
	list := func(name string, items []string, check func(*field.Path, string) field.ErrorList) {
		lp := p.Child(name)
		if len(items) > MaxListItems {
			errs = append(errs, field.TooMany(lp, len(items), MaxListItems))
			return
		}
		for i, it := range items {
			errs = append(errs, check(lp.Index(i), it)...)
		}
	}
	list("verbs", spec.Verbs, func(ip *field.Path, v string) field.ErrorList {
		if v == "" || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz") != "" {
			return field.ErrorList{field.Invalid(ip, v, "must be a lower-case Kubernetes verb such as get, list, watch, create, update, patch, delete or deletecollection")}
		}
		return nil
	})
	q.Verbs = spec.Verbs
	list("stages", spec.Stages, func(ip *field.Path, v string) field.ErrorList {
		for _, s := range Stages {
			if v == s {
				return nil
			}
		}
		return field.ErrorList{field.NotSupported(ip, v, Stages)}
	})
	q.Stages = spec.Stages
	label := func(fp *field.Path, v string) field.ErrorList {
		var out field.ErrorList
		for _, msg := range validation.IsDNS1123Label(v) {
			out = append(out, field.Invalid(fp, v, msg))
		}
		return out
	}
	if spec.Resource != "" {
		errs = append(errs, label(p.Child("resource"), spec.Resource)...)
	}
	q.Resource = spec.Resource
	if g := spec.APIGroup; g != nil && *g != "" {
		for _, msg := range validation.IsDNS1123Subdomain(*g) {
			errs = append(errs, field.Invalid(p.Child("apiGroup"), *g, msg+` (use "" for the core group)`))
		}
	}
	q.APIGroup = spec.APIGroup
	if sr := spec.Subresource; sr != nil {
		if spec.Resource == "" {
			errs = append(errs, field.Required(p.Child("resource"), "spec.subresource needs the resource it belongs to, e.g. resource: deployments, subresource: scale"))
		}
		if *sr != "" {
			errs = append(errs, label(p.Child("subresource"), *sr)...)
		}
	}
	q.Subresource = spec.Subresource
	errs = append(errs, eventquery.ValidateNamespace(p.Child("namespace"), spec.Namespace)...)
	if spec.Namespace != "" {
		ns := spec.Namespace
		q.Namespace = &ns
	}
	if len(spec.Name) > MaxNameBytes {
		errs = append(errs, field.TooLong(p.Child("name"), "", MaxNameBytes))
	}
	q.Name = spec.Name
	list("responseCodes", spec.ResponseCodes, func(ip *field.Path, v string) field.ErrorList {
		c, err := ParseCode(v)
		if err != nil {
			return field.ErrorList{field.Invalid(ip, v, err.Error())}
		}
		q.Codes = append(q.Codes, c)
		return nil
	})
	return q, errs
}

// params is the canonical form of the spec's filters that a continue
// token is bound to, beside the window and namespace.
func params(spec *v1alpha1.AuditLogQuerySpec) string {
	b, err := json.Marshal(struct {
		User          string   `json:"u"`
		Verbs         []string `json:"v"`
		Stages        []string `json:"s"`
		Resource      string   `json:"r"`
		APIGroup      *string  `json:"g"`
		Subresource   *string  `json:"sr"`
		Name          string   `json:"n"`
		ResponseCodes []string `json:"c"`
	}{spec.User, spec.Verbs, spec.Stages, spec.Resource, spec.APIGroup, spec.Subresource, spec.Name, spec.ResponseCodes})
	if err != nil {
		panic("BUG: marshal audit query parameters: " + err.Error())
	}
	return string(b)
}
