package main

import (
	"strings"
	"testing"
)

// The chart's README must carry the table its values.yaml gives.
func TestChartREADMEUpToDate(t *testing.T) {
	if err := run("../../deploy/helm/eventpipe", true); err != nil {
		t.Fatal(err)
	}
}

func TestTable(t *testing.T) {
	got, err := Table([]byte(`
a:
  # -- The b.
  # Second line.
  b: 1
  # -- A map shown whole.
  c: {d: [x]}
# -- Top | level.
e: ""
`))
	if err != nil {
		t.Fatal(err)
	}
	want := "| `a.b` | int | `1` | The b. Second line. |\n" +
		"| `a.c` | object | `{\"d\":[\"x\"]}` | A map shown whole. |\n" +
		"| `e` | string | `\"\"` | Top \\| level. |\n"
	if !strings.HasSuffix(got, want) {
		t.Fatalf("got\n%s\nwant suffix\n%s", got, want)
	}
	if _, err := Table([]byte("a: 1\n")); err == nil || !strings.Contains(err.Error(), "a (line 1) has no '# --' comment") {
		t.Fatalf("undocumented value: got %v", err)
	}
}
