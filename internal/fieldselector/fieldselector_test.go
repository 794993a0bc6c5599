package fieldselector_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/fieldselector"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

type req = fieldselector.Requirement

func TestParse(t *testing.T) {
	for in, want := range map[string][]req{
		"":                 nil,
		"  ":               nil,
		"type=Warning":     {{Field: "type", Operator: "=", Values: []string{"Warning"}}},
		"type==Warning":    {{Field: "type", Operator: "=", Values: []string{"Warning"}}},
		" type != Normal ": {{Field: "type", Operator: "!=", Values: []string{"Normal"}}},
		"regarding.kind=Pod,reason in (BackOff, FailedMount)": {
			{Field: "involvedObject.kind", Operator: "=", Values: []string{"Pod"}},
			{Field: "reason", Operator: "in", Values: []string{"BackOff", "FailedMount"}}},
		"reason notin(BackOff)":                         {{Field: "reason", Operator: "notin", Values: []string{"BackOff"}}},
		"reportingController=kubelet":                   {{Field: "reportingComponent", Operator: "=", Values: []string{"kubelet"}}},
		"source=kubelet":                                {{Field: "source", Operator: "=", Values: []string{"kubelet"}}},
		"related.kind=Node,metadata.name=a.b":           {{Field: "related.kind", Operator: "=", Values: []string{"Node"}}, {Field: "metadata.name", Operator: "=", Values: []string{"a.b"}}},
		`involvedObject.fieldPath=spec.containers{web}`: {{Field: "involvedObject.fieldPath", Operator: "=", Values: []string{"spec.containers{web}"}}},
		`reason=a\,b\=c\(d\)\\`:                         {{Field: "reason", Operator: "=", Values: []string{`a,b=c(d)\`}}},
		"type=":                                         {{Field: "type", Operator: "=", Values: []string{""}}},
		"regarding.namespace in (a,b,c)":                {{Field: "involvedObject.namespace", Operator: "in", Values: []string{"a", "b", "c"}}},
	} {
		t.Run(in, func(t *testing.T) {
			got, err := fieldselector.Parse(in)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"foo=bar":                 `unknown field "foo"`,
		"type":                    "want an operator",
		"type=a,":                 "empty term",
		",type=a":                 "unexpected ','",
		"type=a(b":                "escape it",
		"reason in BackOff":       "parenthesised list",
		"reason in (BackOff":      "unclosed",
		"reason in ()":            "empty value",
		"reason in (a,,b)":        "empty value",
		"type=a b=c":              "escape it",
		`type=a\`:                 "dangling backslash",
		"type=Warning)":           "escape it",
		"=Warning":                "want a field name",
		strings.Repeat("a", 5000): "at most 4096",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := fieldselector.Parse(in)
			var fe *fieldselector.Error
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Contains(t, err.Error(), msg)
		})
	}
	_, err := fieldselector.Parse("nope=1")
	var fe *fieldselector.Error
	require.True(t, errors.As(err, &fe))
	require.True(t, fe.Unknown)
	require.Equal(t, "nope", fe.Label)
}

func TestEveryLabelHasAColumn(t *testing.T) {
	for _, l := range fieldselector.Labels() {
		c, ok := fieldselector.Canonicalize(l)
		require.True(t, ok)
		_, ok = chstore.FieldColumns[c]
		require.True(t, ok, "label %s (canonical %s) has no column in the store", l, c)
	}
}

func TestWhereSQL(t *testing.T) {
	reqs, err := fieldselector.Parse("type=Warning,reason in (A,B),source!=x,related.kind notin (Node)")
	require.NoError(t, err)
	sql, args, err := fieldselector.WhereSQL(reqs, chstore.FieldColumns)
	require.NoError(t, err)
	require.Equal(t, "(type) = ? AND (reason) IN (?, ?) AND (if(source_component != '', source_component, reporting_controller)) != ? AND (related_kind) NOT IN (?)", sql)
	require.Equal(t, []any{"Warning", "A", "B", "x", "Node"}, args)
}

// FuzzParse: any input either parses or gives an *Error; parsed values only
// ever reach SQL as arguments. The SQL text, once the known column
// expressions are removed, holds nothing but operators, placeholders and
// punctuation, so no byte of the input is ever part of it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"type=Warning", "reason in (BackOff,FailedMount)", "a=b", `reason=x\,y`, "type!='; DROP TABLE events --",
		"reason notin (x)", "regarding.kind==Pod, type = Normal", "type=a\\"} {
		f.Add(s)
	}
	var exprs []string
	for _, e := range chstore.FieldColumns {
		exprs = append(exprs, "("+e+")")
	}
	f.Fuzz(func(t *testing.T, s string) {
		reqs, err := fieldselector.Parse(s)
		if err != nil {
			var fe *fieldselector.Error
			require.True(t, errors.As(err, &fe), "non-parser error %T: %v", err, err)
			return
		}
		sql, args, err := fieldselector.WhereSQL(reqs, chstore.FieldColumns)
		require.NoError(t, err)
		if len(reqs) == 0 {
			require.Equal(t, "1", sql)
			return
		}
		n := 0
		for _, r := range reqs {
			n += len(r.Values)
			_, ok := chstore.FieldColumns[r.Field]
			require.True(t, ok)
		}
		require.Len(t, args, n)
		require.Equal(t, n, strings.Count(sql, "?"), "one placeholder per value")
		rest := sql
		for _, e := range exprs {
			rest = strings.ReplaceAll(rest, e, "")
		}
		rest = strings.NewReplacer(" NOT IN ", "", " IN ", "", " AND ", "", "?", "", ", ", "", "!=", "", "=", "", "(", "", ")", "", " ", "").Replace(rest)
		require.Empty(t, rest, "SQL %q holds text that is not a known column, operator or placeholder", sql)
	})
}
