package scope

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseAndValidate(t *testing.T) {
	good := map[string]Scope{
		"Platform":           Platform,
		"Project/alpha":      {Type: TypeProject, Name: "alpha"},
		"Organization/acme":  {Type: TypeOrganization, Name: "acme"},
		"User/jane@corp.com": {Type: TypeUser, Name: "jane@corp.com"},
	}
	for in, want := range good {
		got, err := Parse(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
		require.Equal(t, in, got.String())
	}
	bad := map[string]string{
		"":              "scope type is empty",
		"project/alpha": `unknown scope type "project"`,
		"Project":       "needs a name",
		"Project/":      "needs a name",
		"Platform/x":    "takes no name",
	}
	for in, want := range bad {
		_, err := Parse(in)
		require.ErrorContains(t, err, want, in)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"Platform", "Project/a", "User/", "x/y/z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := Parse(s)
		if err != nil {
			return
		}
		if sc.Validate() != nil {
			t.Fatalf("Parse(%q) returned an invalid scope", s)
		}
		again, err := Parse(sc.String())
		if err != nil || again != sc {
			t.Fatalf("Parse(String()) of %+v = %+v, %v", sc, again, err)
		}
	})
}

func TestAnnotations(t *testing.T) {
	for _, c := range []struct {
		name string
		ann  map[string]string
		want Scope
		err  string
	}{
		{"none", nil, Platform, ""},
		{"a tenant", map[string]string{AnnotationType: TypeProject, AnnotationName: "alpha"}, Scope{Type: TypeProject, Name: "alpha"}, ""},
		{"a name alone", map[string]string{AnnotationName: "alpha"}, Platform, ""},
		{"no name", map[string]string{AnnotationType: TypeProject}, Scope{Type: TypeProject}, "needs a name"},
		{"wrong case", map[string]string{AnnotationType: "project", AnnotationName: "a"}, Scope{Type: "project", Name: "a"}, "unknown scope type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Annotations: c.ann}}
			got, err := FromAnnotations(ev)
			require.Equal(t, c.want, got)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			got, err = PlatformScopes{}.WriteScope(context.Background(), ev)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}

	ev := &corev1.Event{}
	Stamp(ev, Scope{Type: TypeProject, Name: "alpha"})
	require.Equal(t, map[string]string{AnnotationType: TypeProject, AnnotationName: "alpha"}, ev.Annotations)
	Stamp(ev, Platform)
	require.Equal(t, map[string]string{AnnotationType: TypePlatform}, ev.Annotations, "the Platform scope has no name")
}
