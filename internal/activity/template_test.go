package activity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTemplate(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []Part
		err  string
	}{
		{name: "text only", in: "hello", want: []Part{{Text: "hello"}}},
		{name: "empty", in: "", want: nil},
		{name: "expr", in: "Pod {{ regarding.name }} started", want: []Part{
			{Text: "Pod ", Offset: 0}, {Expr: "regarding.name", Offset: 7}, {Text: " started", Offset: 24}}},
		{name: "map literal", in: "{{ {'a': 'b'}['a'] }}", want: []Part{{Expr: "{'a': 'b'}['a']", Offset: 3}}},
		{name: "braces in string", in: "{{ '}}' }}!", want: []Part{{Expr: "'}}'", Offset: 3}, {Text: "!", Offset: 10}}},
		{name: "escaped quote", in: `{{ "a\"}}" }}`, want: []Part{{Expr: `"a\"}}"`, Offset: 3}}},
		{name: "triple quotes", in: "{{ '''it's}}''' }}", want: []Part{{Expr: "'''it's}}'''", Offset: 3}}},
		{name: "single braces in text", in: "a { b } c", want: []Part{{Text: "a { b } c"}}},
		{name: "unclosed", in: "Pod {{ regarding.name", err: "column 5: {{ is not closed by }}"},
		{name: "stray close", in: "Pod }} x", err: "column 5: unbalanced }}"},
		{name: "empty expr", in: "a {{  }}", err: "column 3: empty {{ }}"},
		{name: "unterminated string", in: "{{ 'abc }}", err: "column 4: unterminated string literal"},
		{name: "unbalanced brace", in: "{{ a } }}", err: "column 6: unbalanced }"},
		{name: "unicode column", in: "é {{", err: "column 3: {{ is not closed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTemplate(c.in)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "a", "{{ x }}", "a {{ 'b}}' }} c", "{{", "}}", "{{ {'a': {'b': 1}} }}", "{{ '''x''' }}", "\xff{{\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := ParseTemplate(s)
		if err != nil {
			var te *TemplateError
			require.ErrorAs(t, err, &te)
			if te.Offset < 0 || te.Offset > len(s) {
				t.Fatalf("error offset %d outside template of %d bytes", te.Offset, len(s))
			}
			return
		}
		// Parts tile the template in order: text verbatim, expressions
		// found at their offsets, and nothing literal is a stray }}.
		last := 0
		for _, p := range parts {
			if p.Offset < last {
				t.Fatalf("parts out of order: %+v", parts)
			}
			if p.Expr != "" {
				require.Equal(t, p.Expr, s[p.Offset:p.Offset+len(p.Expr)])
				require.Equal(t, strings.TrimSpace(p.Expr), p.Expr)
				last = p.Offset + len(p.Expr)
				continue
			}
			require.Equal(t, p.Text, s[p.Offset:p.Offset+len(p.Text)])
			require.NotContains(t, p.Text, "}}")
			last = p.Offset + len(p.Text)
		}
	})
}
