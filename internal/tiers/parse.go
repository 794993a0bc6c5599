package tiers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Line is the 1-based line in the file; 0 when unknown.
	Line int
	// Field is the path of the offending field, e.g.
	// `tenants["Project/alpha"].rateLimit.hard`; empty for the whole file.
	Field string
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ParseError lists every problem found in a configuration file.
type ParseError struct {
	File     string
	Problems []Problem
}

func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("tiers config %s is not valid (%d problems): %s", e.File, len(e.Problems), strings.Join(lines, "; "))
}

// Limits on values: far beyond any real use, small enough that sums and
// conversions cannot overflow.
const (
	minWindow  = time.Minute
	maxWindow  = 36500 * Day
	maxRate    = 1_000_000_000_000
	maxNameLen = 63
)

var tierNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// spec is a tier entry or a tenant's overrides as written: nil fields are
// not set.
type spec struct {
	line             int
	tier             *string
	tierLine         int
	queryWindow      *time.Duration
	retention        *time.Duration
	storageQuota     *int64
	rateSoft         *int64
	rateHard         *int64
	anyLimitOverride bool
}

type parser struct {
	problems []Problem
}

func (p *parser) add(line int, field, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads a tiers configuration. file names it in errors. Every problem
// is reported, each with its line and field; unknown fields, unknown tiers,
// invalid tenant scopes and inconsistent limits are all errors. Empty input
// is the default configuration.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{}
	sum := sha256.Sum256(data)
	cfg := &Config{defaultTier: Free, tiers: map[string]Tier{}, tenants: map[scope.Scope]Limits{}, digest: hex.EncodeToString(sum[:6])}
	for _, t := range DefaultTiers() {
		cfg.tiers[t.Name] = t
	}

	var root *yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.add(0, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, &ParseError{File: file, Problems: p.problems}
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			line := extra.Line
			if err != nil {
				line = 0
			}
			p.add(line, "", "only one YAML document is allowed")
		}
		if len(doc.Content) > 0 {
			root = doc.Content[0]
		}
	}

	var defaultTierNode *yaml.Node
	var tierSpecs []struct {
		name string
		line int
		spec spec
	}
	type tenantEntry struct {
		key  string
		sc   scope.Scope
		line int
		spec spec
	}
	var tenants []tenantEntry
	if root != nil && !(root.Kind == yaml.ScalarNode && root.Tag == "!!null") {
		p.eachField(root, "", map[string]func(k, v *yaml.Node){
			"defaultTier": func(_, v *yaml.Node) {
				if p.scalar(v, "defaultTier") {
					defaultTierNode = v
				}
			},
			"tiers": func(_, v *yaml.Node) {
				p.eachEntry(v, "tiers", func(k, v *yaml.Node) {
					path := "tiers." + k.Value
					if !tierNameRE.MatchString(k.Value) || len(k.Value) > maxNameLen {
						p.add(k.Line, path, "tier name %q must start with a letter and hold only letters, digits, '-' and '_' (at most %d)", k.Value, maxNameLen)
						return
					}
					if k.Value == PlatformTier {
						p.add(k.Line, path, "%q is reserved for the platform scope, which is always unlimited", k.Value)
						return
					}
					tierSpecs = append(tierSpecs, struct {
						name string
						line int
						spec spec
					}{k.Value, k.Line, p.spec(v, path, false)})
				})
			},
			"tenants": func(_, v *yaml.Node) {
				p.eachEntry(v, "tenants", func(k, v *yaml.Node) {
					path := fmt.Sprintf("tenants[%q]", k.Value)
					sc, err := scope.Parse(k.Value)
					if err != nil {
						p.add(k.Line, path, "not a tenant scope (Organization/NAME, Project/NAME or User/NAME): %v", err)
						return
					}
					if sc.IsPlatform() {
						p.add(k.Line, path, "the Platform scope is always unlimited and takes no tier")
						return
					}
					s := spec{line: k.Line}
					switch {
					case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
						// "Project/alpha:" with nothing: the default tier.
					case v.Kind == yaml.ScalarNode:
						if p.scalar(v, path) {
							name := v.Value
							s = spec{line: k.Line, tier: &name, tierLine: v.Line}
						}
					default:
						s = p.spec(v, path, true)
					}
					tenants = append(tenants, tenantEntry{key: k.Value, sc: sc, line: k.Line, spec: s})
				})
			},
		})
	}

	for _, ts := range tierSpecs {
		path := "tiers." + ts.name
		t, builtin := cfg.tiers[ts.name]
		if !builtin {
			t = Tier{Name: ts.name}
			for _, m := range []struct {
				set   bool
				field string
			}{{ts.spec.queryWindow != nil, "queryWindow"}, {ts.spec.storageQuota != nil, "storageQuota"},
				{ts.spec.rateSoft != nil, "rateLimit.soft"}, {ts.spec.rateHard != nil, "rateLimit.hard"}} {
				if !m.set {
					p.add(ts.line, path+"."+m.field, "a new tier must set it (only Free, Pro and Enterprise have defaults)")
				}
			}
		}
		s := ts.spec
		if s.queryWindow != nil {
			t.QueryWindow = *s.queryWindow
			t.Retention = t.QueryWindow // retention follows the query access unless set
		}
		if s.retention != nil {
			t.Retention = *s.retention
		}
		if s.storageQuota != nil {
			t.StorageQuota = *s.storageQuota
		}
		if s.rateSoft != nil {
			t.RateSoft = *s.rateSoft
		}
		if s.rateHard != nil {
			t.RateHard = *s.rateHard
		}
		p.check(ts.line, path, limitsOf(t))
		cfg.tiers[ts.name] = t
	}

	defined := strings.Join(cfg.TierNames(), ", ")
	if defaultTierNode != nil {
		if _, ok := cfg.tiers[defaultTierNode.Value]; !ok {
			p.add(defaultTierNode.Line, "defaultTier", "unknown tier %q; defined tiers: %s", defaultTierNode.Value, defined)
		} else {
			cfg.defaultTier = defaultTierNode.Value
		}
	}

	for _, te := range tenants {
		path := fmt.Sprintf("tenants[%q]", te.key)
		if _, dup := cfg.tenants[te.sc]; dup {
			p.add(te.line, path, "listed twice")
			continue
		}
		s := te.spec
		tierName := cfg.defaultTier
		if s.tier != nil {
			tierName = *s.tier
		}
		t, ok := cfg.tiers[tierName]
		if !ok {
			p.add(s.tierLine, path+".tier", "unknown tier %q; defined tiers: %s", tierName, defined)
			continue
		}
		l := limitsOf(t)
		l.Scope = te.sc
		l.Overridden = s.anyLimitOverride
		if s.queryWindow != nil {
			l.QueryWindow = *s.queryWindow
			// Keep the window queryable: the tier's retention, or longer.
			l.Retention = max(l.Retention, l.QueryWindow)
		}
		if s.retention != nil {
			l.Retention = *s.retention
		}
		if s.storageQuota != nil {
			l.StorageQuota = *s.storageQuota
		}
		if s.rateSoft != nil {
			l.RateSoft = *s.rateSoft
		}
		if s.rateHard != nil {
			l.RateHard = *s.rateHard
		}
		p.check(te.line, path, l)
		cfg.tenants[te.sc] = l
	}

	if len(p.problems) > 0 {
		return nil, &ParseError{File: file, Problems: p.problems}
	}
	cfg.minRet, cfg.maxRet = maxWindow, 0
	for _, t := range cfg.tiers {
		cfg.minRet, cfg.maxRet = min(cfg.minRet, t.Retention), max(cfg.maxRet, t.Retention)
	}
	for _, l := range cfg.tenants {
		cfg.minRet, cfg.maxRet = min(cfg.minRet, l.Retention), max(cfg.maxRet, l.Retention)
	}
	return cfg, nil
}

// check reports limits that contradict each other.
func (p *parser) check(line int, path string, l Limits) {
	if l.Retention < l.QueryWindow {
		p.add(line, path+".retention", "retention %s is shorter than queryWindow %s: the end of the window could not be queried; make retention at least the window",
			FormatDuration(l.Retention), FormatDuration(l.QueryWindow))
	}
	if l.RateSoft != Unlimited && l.RateHard != Unlimited && l.RateSoft > l.RateHard {
		p.add(line, path+".rateLimit", "soft limit %d is above hard limit %d; the soft limit warns before the hard one refuses", l.RateSoft, l.RateHard)
	}
	if l.RateSoft == Unlimited && l.RateHard != Unlimited {
		p.add(line, path+".rateLimit.soft", "unlimited soft limit with a hard limit of %d: set soft at or below hard (equal means no warning before refusal)", l.RateHard)
	}
}

// eachField walks a mapping whose keys must be among fields.
func (p *parser) eachField(n *yaml.Node, path string, fields map[string]func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, strings.TrimPrefix(path, "."), "must be a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := strings.TrimPrefix(path+"."+k.Value, ".")
		if k.Kind != yaml.ScalarNode {
			p.add(k.Line, strings.TrimPrefix(path, "."), "keys must be plain strings")
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			p.add(k.Line, field, "unknown field; allowed: %s", strings.Join(sortedKeys(fields), ", "))
			continue
		}
		if seen[k.Value] {
			p.add(k.Line, field, "set twice")
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode {
			p.add(v.Line, field, "YAML aliases are not supported")
			continue
		}
		f(k, v)
	}
}

// eachEntry walks a mapping with free-form keys (tier names, tenants).
func (p *parser) eachEntry(n *yaml.Node, path string, f func(k, v *yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "must be a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.add(k.Line, path, "keys must be plain strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(k.Line, fmt.Sprintf("%s[%q]", path, k.Value), "listed twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			p.add(v.Line, fmt.Sprintf("%s[%q]", path, k.Value), "YAML aliases are not supported")
			continue
		}
		f(k, v)
	}
}

// spec reads a tier entry (allowTier false) or a tenant entry.
func (p *parser) spec(n *yaml.Node, path string, allowTier bool) spec {
	s := spec{line: n.Line}
	fields := map[string]func(k, v *yaml.Node){
		"queryWindow": func(k, v *yaml.Node) {
			if d, ok := p.duration(v, path+".queryWindow"); ok {
				s.queryWindow, s.anyLimitOverride = &d, true
			}
		},
		"retention": func(k, v *yaml.Node) {
			if d, ok := p.duration(v, path+".retention"); ok {
				s.retention, s.anyLimitOverride = &d, true
			}
		},
		"storageQuota": func(k, v *yaml.Node) {
			if q, ok := p.quantity(v, path+".storageQuota"); ok {
				s.storageQuota, s.anyLimitOverride = &q, true
			}
		},
		"rateLimit": func(k, v *yaml.Node) {
			p.eachField(v, path+".rateLimit", map[string]func(k, v *yaml.Node){
				"soft": func(_, v *yaml.Node) {
					if r, ok := p.rate(v, path+".rateLimit.soft"); ok {
						s.rateSoft, s.anyLimitOverride = &r, true
					}
				},
				"hard": func(_, v *yaml.Node) {
					if r, ok := p.rate(v, path+".rateLimit.hard"); ok {
						s.rateHard, s.anyLimitOverride = &r, true
					}
				},
			})
		},
	}
	if allowTier {
		fields["tier"] = func(_, v *yaml.Node) {
			if p.scalar(v, path+".tier") {
				name := v.Value
				s.tier, s.tierLine = &name, v.Line
			}
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return s
	}
	p.eachField(n, path, fields)
	return s
}

func (p *parser) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(n.Line, path, "must be a single value, got %s", kindName(n))
		return false
	}
	return true
}

// duration reads "24h", "90m", "60d" or "1d12h".
func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if !p.scalar(n, path) {
		return 0, false
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		p.add(n.Line, path, "%v", err)
		return 0, false
	}
	return d, true
}

// ParseDuration reads a configuration duration: Go's syntax ("24h",
// "90m") with an optional leading whole number of days ("60d", "1d12h").
// It must be between one minute and 36500 days.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("duration %q: want a number with a unit, such as 24h, 90m, 60d or 1d12h", s)
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil || i == 0 || days > uint64(maxWindow/Day) {
			return 0, bad
		}
		d, rest = time.Duration(days)*Day, s[i+1:]
	}
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, bad
		}
		x, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		d += x
	}
	if d < minWindow || d > maxWindow {
		return 0, fmt.Errorf("duration %q: must be between 1m and %dd", s, int64(maxWindow/Day))
	}
	return d, nil
}

// quantity reads "unlimited" or a byte count in Kubernetes quantity form
// ("1Gi", "500M", "1073741824").
func (p *parser) quantity(n *yaml.Node, path string) (int64, bool) {
	if !p.scalar(n, path) {
		return 0, false
	}
	v, err := ParseBytes(n.Value)
	if err != nil {
		p.add(n.Line, path, "%v", err)
		return 0, false
	}
	return v, true
}

// ParseBytes reads "unlimited" (Unlimited) or a whole, non-negative byte
// count in Kubernetes quantity form: "1Gi", "50Gi", "500M", "1073741824".
func ParseBytes(s string) (int64, error) {
	if s == "unlimited" {
		return Unlimited, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("storage quota %q: want bytes like 1Gi, 500Mi, 1073741824 or \"unlimited\"", s)
	}
	v, ok := q.AsInt64()
	if !ok || v < 0 || v > 1<<62 {
		return 0, fmt.Errorf("storage quota %q: want a whole number of bytes between 0 and 4Ei", s)
	}
	return v, nil
}

// rate reads "unlimited" or events per minute.
func (p *parser) rate(n *yaml.Node, path string) (int64, bool) {
	if !p.scalar(n, path) {
		return 0, false
	}
	if n.Value == "unlimited" {
		return Unlimited, true
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil || v < 0 || v > maxRate {
		p.add(n.Line, path, "rate %q: want events per minute, a whole number from 0 to %d, or \"unlimited\"", n.Value, int64(maxRate))
		return 0, false
	}
	return v, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
