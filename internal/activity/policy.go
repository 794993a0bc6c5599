package activity

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// LabelBuiltin marks the policies eventpipe ships. User policies for the
// same kind come before them.
const LabelBuiltin = "activity.miloapis.com/builtin"

// Limits that keep one policy's cost bounded.
const (
	maxRules       = 100
	maxExprLen     = 4096
	maxTemplateLen = 4096
)

// Policy is a compiled ActivityPolicy. It is immutable and safe for
// concurrent use.
type Policy struct {
	Name    string
	Group   string
	Kind    string
	Builtin bool
	Version string
	Rules   []*Rule
	// AuditRules are tried on audit records.
	AuditRules []*Rule
	Disabled   bool
}

// Rule is one compiled rule.
type Rule struct {
	Name  string
	match cel.Program
	parts []compiledPart
	// drop: a matching audit record makes no Activity.
	drop bool
}

// compileRules validates and compiles one rule list with the environments
// of what it reads (events or audit records); errors name the field.
func compileRules(textE, objE *cel.Env, rules []activityv1alpha1.ActivityPolicyRule, rulesPath *field.Path, isAudit bool) ([]*Rule, field.ErrorList) {
	var errs field.ErrorList
	if len(rules) > maxRules {
		errs = append(errs, field.TooMany(rulesPath, len(rules), maxRules))
	}
	vars := Variables
	if isAudit {
		vars = AuditVariables
	}
	var out []*Rule
	seen := map[string]bool{}
	for i, r := range rules {
		p := rulesPath.Index(i)
		for _, msg := range utilvalidation.IsDNS1123Label(r.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), r.Name, msg))
		}
		if seen[r.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), r.Name))
		}
		seen[r.Name] = true
		rule := &Rule{Name: r.Name, drop: r.Drop}
		var ruleErrs field.ErrorList
		rule.match, ruleErrs = compileMatch(textE, r.Match, p.Child("match"), vars)
		errs = append(errs, ruleErrs...)
		switch {
		case r.Drop && !isAudit:
			errs = append(errs, field.Forbidden(p.Child("drop"), "only audit rules may drop: every event has its Activity"))
		case r.Drop && r.Summary != "":
			errs = append(errs, field.Forbidden(p.Child("summary"), "a rule that drops writes no summary; remove one of drop and summary"))
		case !r.Drop:
			rule.parts, ruleErrs = compileSummary(textE, objE, r.Summary, p.Child("summary"), vars)
			errs = append(errs, ruleErrs...)
		}
		out = append(out, rule)
	}
	return out, errs
}

type compiledPart struct {
	text string
	prog cel.Program
	// obj, for a part that is a link(...) call, returns the linked object.
	obj cel.Program
}

// Compile validates p and compiles every rule. The errors, if any, name the
// field and, for CEL and templates, the rule and column.
func Compile(p *activityv1alpha1.ActivityPolicy) (*Policy, field.ErrorList) {
	var errs field.ErrorList
	for _, msg := range validation.NameIsDNSSubdomain(p.Name, false) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), p.Name, msg))
	}
	cp, specErrs := CompileSpec(&p.Spec, field.NewPath("spec"))
	errs = append(errs, specErrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	cp.Name = p.Name
	cp.Builtin = p.Labels[LabelBuiltin] == "true"
	cp.Version = p.ResourceVersion
	return cp, nil
}

// CompileSpec validates and compiles a policy spec; fld is its path.
func CompileSpec(spec *activityv1alpha1.ActivityPolicySpec, fld *field.Path) (*Policy, field.ErrorList) {
	var errs field.ErrorList
	textE, objE, err := envs()
	if err != nil {
		panic("BUG: CEL environment: " + err.Error())
	}
	res := fld.Child("resource")
	if spec.Resource.Kind == "" {
		errs = append(errs, field.Required(res.Child("kind"), "the resource kind the policy applies to, e.g. Deployment, or \"*\" for any kind"))
	} else if spec.Resource.Kind != "*" && !isKindName(spec.Resource.Kind) {
		errs = append(errs, field.Invalid(res.Child("kind"), spec.Resource.Kind, "must be a kind such as Deployment (letters and digits, starting with a letter) or \"*\""))
	}
	if g := spec.Resource.APIGroup; g != "" && g != "*" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(g) {
			errs = append(errs, field.Invalid(res.Child("apiGroup"), g, "must be \"\" (core), \"*\" (any) or an API group such as apps: "+msg))
		}
	}
	if len(spec.EventRules) == 0 && len(spec.AuditRules) == 0 {
		errs = append(errs, field.Required(fld.Child("eventRules"), "at least one rule with name, match and summary, in eventRules (for Events) or auditRules (for audit records)"))
	}
	cp := &Policy{Group: spec.Resource.APIGroup, Kind: spec.Resource.Kind}
	var ruleErrs field.ErrorList
	cp.Rules, ruleErrs = compileRules(textE, objE, spec.EventRules, fld.Child("eventRules"), false)
	errs = append(errs, ruleErrs...)
	if len(spec.AuditRules) > 0 {
		at, ao, err := auditEnvs()
		if err != nil {
			panic("BUG: CEL audit environment: " + err.Error())
		}
		cp.AuditRules, ruleErrs = compileRules(at, ao, spec.AuditRules, fld.Child("auditRules"), true)
		errs = append(errs, ruleErrs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cp, nil
}

func isKindName(s string) bool {
	if len(s) > 63 || s == "" || !(s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// celError renders the first CEL issue with its position, offset by base
// columns (the expression's place in a template).
func celError(iss *cel.Issues, base int, vars string) string {
	var msgs []string
	for _, e := range iss.Errors() {
		loc := e.Location
		col := loc.Column() + 1
		pos := fmt.Sprintf("column %d", base+col)
		if loc.Line() > 1 {
			pos = fmt.Sprintf("line %d, column %d", loc.Line(), col)
		}
		msgs = append(msgs, pos+": "+e.Message)
	}
	return strings.Join(msgs, "; ") + " (variables: " + vars + ")"
}

func compileMatch(env *cel.Env, src string, p *field.Path, vars string) (cel.Program, field.ErrorList) {
	if strings.TrimSpace(src) == "" {
		return nil, field.ErrorList{field.Required(p, "a CEL expression that returns bool, e.g. event.reason == 'BackOff' or verb == 'delete' (variables: "+vars+")")}
	}
	if len(src) > maxExprLen {
		return nil, field.ErrorList{field.TooLong(p, "", maxExprLen)}
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, field.ErrorList{field.Invalid(p, src, celError(iss, 0, vars))}
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, field.ErrorList{field.Invalid(p, src, fmt.Sprintf("must return bool, returns %s", t))}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, field.ErrorList{field.Invalid(p, src, err.Error())}
	}
	return prg, nil
}

func compileSummary(textE, objE *cel.Env, src string, p *field.Path, vars string) ([]compiledPart, field.ErrorList) {
	if strings.TrimSpace(src) == "" {
		return nil, field.ErrorList{field.Required(p, "a summary template, e.g. \"Pod {{ regarding.name }} started\"")}
	}
	if len(src) > maxTemplateLen {
		return nil, field.ErrorList{field.TooLong(p, "", maxTemplateLen)}
	}
	parts, err := ParseTemplate(src)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(p, src, err.Error())}
	}
	var out []compiledPart
	var errs field.ErrorList
	for _, part := range parts {
		if part.Expr == "" {
			out = append(out, compiledPart{text: part.Text})
			continue
		}
		base := Column(src, part.Offset) - 1
		ast, iss := textE.Compile(part.Expr)
		if iss.Err() != nil {
			errs = append(errs, field.Invalid(p, src, celError(iss, base, vars)))
			continue
		}
		prg, err := textE.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			errs = append(errs, field.Invalid(p, src, err.Error()))
			continue
		}
		cpart := compiledPart{prog: prg}
		if isLinkCall(ast) {
			oast, iss := objE.Compile(part.Expr)
			if iss.Err() != nil {
				errs = append(errs, field.Invalid(p, src, celError(iss, base, vars)))
				continue
			}
			if cpart.obj, err = objE.Program(oast, cel.EvalOptions(cel.OptOptimize)); err != nil {
				errs = append(errs, field.Invalid(p, src, err.Error()))
				continue
			}
		}
		out = append(out, cpart)
	}
	return out, errs
}

// isLinkCall reports whether the expression is a call of link at its top.
func isLinkCall(a *cel.Ast) bool {
	e := a.NativeRep().Expr()
	return e.Kind() == celast.CallKind && e.AsCall().FunctionName() == linkFunc && !e.AsCall().IsMemberFunction()
}
