package scope

import (
	"testing"

	"github.com/stretchr/testify/require"
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
