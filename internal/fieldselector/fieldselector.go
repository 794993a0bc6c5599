// Package fieldselector parses the field selectors of history queries
// (EventQuery, EventFacetQuery) and turns them into parameterised SQL.
//
// The vocabulary is the union of what both Event API groups accept natively
// (core/v1 labels, events.k8s.io/v1's regarding.* and reportingController)
// plus related.*; every label is rewritten to its canonical core/v1
// spelling. Beyond kube's =, == and !=, the set forms "f in (a,b)" and
// "f notin (a,b)" are accepted.
//
// Values never reach SQL text: WhereSQL emits one placeholder per value and
// returns the values as arguments, and the column expressions come from a
// fixed table, never from the input.
package fieldselector

import (
	"fmt"
	"sort"
	"strings"

	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
)

// Operator is a requirement's comparison.
type Operator string

// The operators. "==" parses as Equals.
const (
	Equals    Operator = "="
	NotEquals Operator = "!="
	In        Operator = "in"
	NotIn     Operator = "notin"
)

// Limits keep a selector's cost bounded.
const (
	MaxLength = 4096
	MaxTerms  = 32
	MaxValues = 100
)

// Requirement is one term: a canonical field, an operator and its values
// (exactly one for Equals and NotEquals, one or more for the set forms).
type Requirement struct {
	Field    string
	Operator Operator
	Values   []string
}

// Canonical related.* labels: kube has none, eventpipe adds them.
const (
	LabelRelatedKind      = "related.kind"
	LabelRelatedNamespace = "related.namespace"
	LabelRelatedName      = "related.name"
	LabelMetadataUID      = "metadata.uid"
)

// aliases maps every accepted label to its canonical label.
var aliases = func() map[string]string {
	m := map[string]string{
		LabelRelatedKind:      LabelRelatedKind,
		LabelRelatedNamespace: LabelRelatedNamespace,
		LabelRelatedName:      LabelRelatedName,
		LabelMetadataUID:      LabelMetadataUID,
	}
	for _, g := range []string{fields.GroupCore, fields.GroupEvents} {
		labels, err := fields.Labels(g)
		if err != nil {
			panic("BUG: " + err.Error())
		}
		for _, l := range labels {
			c, _, err := fields.ConvertFieldLabel(g, l, "")
			if err != nil {
				panic("BUG: " + err.Error())
			}
			m[l] = c
		}
	}
	return m
}()

// Labels returns every label a selector may use, sorted.
func Labels() []string {
	out := make([]string, 0, len(aliases))
	for l := range aliases {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Canonicalize returns the canonical label for label, or false.
func Canonicalize(label string) (string, bool) {
	c, ok := aliases[label]
	return c, ok
}

// Error is a selector the parser refuses. Unknown is set when the problem
// is a label outside the vocabulary (Label names it).
type Error struct {
	Msg     string
	Unknown bool
	Label   string
}

func (e *Error) Error() string { return e.Msg }

func errorf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Parse reads a selector. The empty string (or only spaces) selects
// everything and yields no requirements. Terms are separated by commas;
// spaces around labels, operators and values are ignored; a backslash
// escapes the next character (to put a comma, "=", "!", "(", ")", a space
// or a backslash into a value).
func Parse(s string) ([]Requirement, error) {
	if len(s) > MaxLength {
		return nil, errorf("selector is %d bytes long; at most %d are allowed", len(s), MaxLength)
	}
	p := &parser{s: s}
	p.skipSpace()
	if p.eof() {
		return nil, nil
	}
	var out []Requirement
	for {
		r, err := p.term()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if len(out) > MaxTerms {
			return nil, errorf("selector has more than %d terms", MaxTerms)
		}
		p.skipSpace()
		if p.eof() {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errorf("unexpected %q at offset %d; separate terms with commas", p.s[p.i], p.i)
		}
		p.i++
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) skipSpace() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

func (p *parser) term() (Requirement, error) {
	p.skipSpace()
	start := p.i
	for !p.eof() && isLabelByte(p.s[p.i]) {
		p.i++
	}
	label := p.s[start:p.i]
	if label == "" {
		if p.eof() {
			return Requirement{}, errorf("empty term at offset %d; want <field><op><value>, e.g. type=Warning", p.i)
		}
		return Requirement{}, errorf("unexpected %q at offset %d; want a field name, e.g. type=Warning", p.s[p.i], p.i)
	}
	canon, ok := aliases[label]
	if !ok {
		return Requirement{}, &Error{Unknown: true, Label: label,
			Msg: fmt.Sprintf("unknown field %q; allowed: %s", label, strings.Join(Labels(), ", "))}
	}
	p.skipSpace()
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "=="):
		p.i += 2
		return p.single(canon, Equals)
	case strings.HasPrefix(rest, "!="):
		p.i += 2
		return p.single(canon, NotEquals)
	case strings.HasPrefix(rest, "="):
		p.i++
		return p.single(canon, Equals)
	case hasWord(rest, "notin"):
		p.i += len("notin")
		return p.set(canon, NotIn)
	case hasWord(rest, "in"):
		p.i += len("in")
		return p.set(canon, In)
	}
	return Requirement{}, errorf("field %q: want an operator (=, ==, !=, in, notin) at offset %d", label, p.i)
}

// hasWord reports whether s starts with the keyword w followed by a space or
// "(".
func hasWord(s, w string) bool {
	return strings.HasPrefix(s, w) && len(s) > len(w) && (s[len(w)] == ' ' || s[len(w)] == '\t' || s[len(w)] == '(')
}

// value reads up to an unescaped byte of stop (not consumed), unescaping,
// and trims unescaped surrounding spaces.
func (p *parser) value(stop string) (string, error) {
	p.skipSpace()
	var b strings.Builder
	trail := 0 // unescaped trailing spaces written to b
	for !p.eof() {
		c := p.s[p.i]
		if strings.IndexByte(stop, c) >= 0 {
			break
		}
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return "", errorf("dangling backslash at the end of the selector")
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			trail = 0
			continue
		case '(', ')', '=', '!':
			return "", errorf("unexpected %q in a value at offset %d; escape it with a backslash", c, p.i)
		case ' ', '\t':
			trail++
		default:
			trail = 0
		}
		b.WriteByte(c)
		p.i++
	}
	v := b.String()
	return v[:len(v)-trail], nil
}

func (p *parser) single(field string, op Operator) (Requirement, error) {
	v, err := p.value(",")
	if err != nil {
		return Requirement{}, err
	}
	return Requirement{Field: field, Operator: op, Values: []string{v}}, nil
}

func (p *parser) set(field string, op Operator) (Requirement, error) {
	p.skipSpace()
	if p.eof() || p.s[p.i] != '(' {
		return Requirement{}, errorf("field %q: %s needs a parenthesised list, e.g. reason %s (BackOff,FailedMount)", field, op, op)
	}
	p.i++
	var vals []string
	for {
		v, err := p.value(",)")
		if err != nil {
			return Requirement{}, err
		}
		if p.eof() {
			return Requirement{}, errorf("field %q: unclosed %q; close the list with \")\"", field, "(")
		}
		if v == "" {
			return Requirement{}, errorf("field %q: empty value in the %s list; to match an empty field use %s= or %s!=", field, op, field, field)
		}
		vals = append(vals, v)
		if len(vals) > MaxValues {
			return Requirement{}, errorf("field %q: more than %d values in the list", field, MaxValues)
		}
		c := p.s[p.i]
		p.i++
		if c == ')' {
			return Requirement{Field: field, Operator: op, Values: vals}, nil
		}
	}
}

// WhereSQL turns requirements into an SQL condition (terms ANDed) and its
// arguments, one "?" per value. columns maps canonical labels to SQL
// expressions; a label missing from it is an error (a bug: Parse only
// returns canonical labels). No requirements give "1".
func WhereSQL(reqs []Requirement, columns map[string]string) (string, []any, error) {
	if len(reqs) == 0 {
		return "1", nil, nil
	}
	var parts []string
	var args []any
	for _, r := range reqs {
		col, ok := columns[r.Field]
		if !ok {
			return "", nil, fmt.Errorf("build selector SQL: field %q has no column", r.Field)
		}
		switch r.Operator {
		case Equals, NotEquals:
			if len(r.Values) != 1 {
				return "", nil, fmt.Errorf("build selector SQL: %s %s needs one value", r.Field, r.Operator)
			}
			parts = append(parts, "("+col+") "+string(r.Operator)+" ?")
		case In, NotIn:
			if len(r.Values) == 0 {
				return "", nil, fmt.Errorf("build selector SQL: %s %s needs values", r.Field, r.Operator)
			}
			kw := " IN ("
			if r.Operator == NotIn {
				kw = " NOT IN ("
			}
			parts = append(parts, "("+col+")"+kw+strings.TrimSuffix(strings.Repeat("?, ", len(r.Values)), ", ")+")")
		default:
			return "", nil, fmt.Errorf("build selector SQL: unknown operator %q", r.Operator)
		}
		for _, v := range r.Values {
			args = append(args, v)
		}
	}
	return strings.Join(parts, " AND "), args, nil
}
