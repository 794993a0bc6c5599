package activity

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
	corev1 "k8s.io/api/core/v1"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Outcome is what the policies make of one event.
type Outcome struct {
	Summary string
	Links   []activityv1alpha1.ActivityLink
	// Policy and Rule name the rule that wrote the summary; both are empty
	// when no rule matched and the last-resort line was used.
	Policy, Rule string
	// Errors are the rules that failed to evaluate; evaluation went on with
	// the next rule, so one broken rule never loses an Activity.
	Errors []RuleError
}

// RuleError is a rule that failed on an event.
type RuleError struct {
	Policy, Rule string
	Err          error
}

func (e RuleError) Error() string {
	return fmt.Sprintf("policy %s rule %s: %v", e.Policy, e.Rule, e.Err)
}

// evaluate tries p's rules in order on v.
func (p *Policy) evaluate(v *vars, o *Outcome) bool {
	for _, r := range p.Rules {
		ok, err := r.matches(v)
		if err == nil && ok {
			var links []activityv1alpha1.ActivityLink
			var summary string
			summary, links, err = r.render(v)
			if err == nil {
				o.Summary, o.Links, o.Policy, o.Rule = summary, links, p.Name, r.Name
				return true
			}
		}
		if err != nil {
			o.Errors = append(o.Errors, RuleError{Policy: p.Name, Rule: r.Name, Err: err})
		}
	}
	return false
}

func (r *Rule) matches(v interpreter.Activation) (bool, error) {
	out, _, err := r.match.Eval(v)
	if err != nil {
		return false, fmt.Errorf("match: %w", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("match returned %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

func (r *Rule) render(v interpreter.Activation) (string, []activityv1alpha1.ActivityLink, error) {
	if len(r.parts) == 1 && r.parts[0].prog == nil {
		return r.parts[0].text, nil, nil
	}
	var b strings.Builder
	var links []activityv1alpha1.ActivityLink
	for _, p := range r.parts {
		if p.prog == nil {
			b.WriteString(p.text)
			continue
		}
		out, _, err := p.prog.Eval(v)
		if err != nil {
			return "", nil, fmt.Errorf("summary: %w", err)
		}
		text := printVal(out)
		b.WriteString(text)
		if p.obj != nil {
			obj, _, err := p.obj.Eval(v)
			if err != nil {
				return "", nil, fmt.Errorf("summary: link: %w", err)
			}
			res, err := resourceOf(obj)
			if err != nil {
				return "", nil, fmt.Errorf("summary: %w", err)
			}
			// An empty reference (an event about nothing in particular)
			// prints its text and links nowhere.
			if res.Kind != "" || res.Name != "" {
				links = append(links, activityv1alpha1.ActivityLink{Marker: text, Resource: res})
			}
		}
	}
	return trimSummary(b.String()), links, nil
}

// Set is an immutable set of compiled policies, with the ordered candidates
// per kind cached. It is safe for concurrent use.
type Set struct {
	policies []*Policy
	cache    sync.Map // groupKind -> []*Policy
	cached   atomic.Int64
}

type groupKind struct{ group, kind string }

// NewSet returns a set of ps.
func NewSet(ps []*Policy) *Set { return &Set{policies: ps} }

// Policies returns the set's policies.
func (s *Set) Policies() []*Policy { return s.policies }

// candidates returns the policies that apply to group/kind, in evaluation
// order: exact matches before wildcards, user policies before built-in
// ones, then by name.
func (s *Set) candidates(group, kind string) []*Policy {
	k := groupKind{group, kind}
	if c, ok := s.cache.Load(k); ok {
		return c.([]*Policy)
	}
	type ranked struct {
		p    *Policy
		rank int
	}
	var rs []ranked
	for _, p := range s.policies {
		if (p.Group != "*" && p.Group != group) || (p.Kind != "*" && !strings.EqualFold(p.Kind, kind)) {
			continue
		}
		rank := 0
		if p.Group == "*" {
			rank++
		}
		if p.Kind == "*" {
			rank += 2
		}
		rank *= 2
		if p.Builtin {
			rank++
		}
		rs = append(rs, ranked{p, rank})
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].rank != rs[j].rank {
			return rs[i].rank < rs[j].rank
		}
		return rs[i].p.Name < rs[j].p.Name
	})
	out := make([]*Policy, len(rs))
	for i, r := range rs {
		out[i] = r.p
	}
	// Bound the cache: kinds come from event data.
	if n := s.cached.Add(1); n < 10000 {
		s.cache.Store(k, out)
	}
	return out
}

// Evaluate makes the summary of ev: the first matching rule of the first
// policy that has one wins. When none matches (no fallback policy is
// installed) a plain last-resort line is used, so every event still gets
// an Activity.
func (s *Set) Evaluate(ev *corev1.Event) Outcome {
	v := newVars(ev)
	var o Outcome
	for _, p := range s.candidates(v.regarding["apiGroup"], ev.InvolvedObject.Kind) {
		if p.evaluate(v, &o) {
			return o
		}
	}
	o.Summary = trimSummary(lastResort(ev))
	return o
}

func lastResort(ev *corev1.Event) string {
	subject := strings.TrimSpace(ev.InvolvedObject.Kind + " " + ev.InvolvedObject.Name)
	if subject == "" {
		subject = "Event " + ev.Name
	}
	if ev.Message != "" {
		return subject + ": " + ev.Message
	}
	return subject + ": " + ev.Reason
}

// Engine holds the current policy set and swaps it when policies change.
// It is safe for concurrent use.
type Engine struct {
	mu       sync.Mutex // guards byName; the set itself is swapped atomically
	byName   map[string]*Policy
	set      atomic.Pointer[Set]
	onChange func()
}

// NewEngine returns an engine with no policies.
func NewEngine() *Engine {
	e := &Engine{byName: map[string]*Policy{}}
	e.set.Store(NewSet(nil))
	return e
}

// Set returns the current policies.
func (e *Engine) Set() *Set { return e.set.Load() }

// Put adds or replaces a compiled policy.
func (e *Engine) Put(p *Policy) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byName[p.Name] = p
	e.rebuild()
}

// Remove drops the policy called name.
func (e *Engine) Remove(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byName, name)
	e.rebuild()
}

func (e *Engine) rebuild() {
	ps := make([]*Policy, 0, len(e.byName))
	for _, p := range e.byName {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	e.set.Store(NewSet(ps))
}
