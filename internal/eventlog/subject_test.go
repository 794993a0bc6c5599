package eventlog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
)

func TestTokenEncoding(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "_"},
		{"web", "web"},
		{"web-7d9f.17a3b2c1d0e4f5a6", "web-7d9f~2E17a3b2c1d0e4f5a6"},
		{"_", "~5F"},
		{"a*b>c d", "a~2Ab~3Ec~20d"},
		{"~", "~7E"},
		{"ünï", "~C3~BCn~C3~AF"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got := EncodeToken(c.in)
			require.Equal(t, c.want, got)
			back, err := DecodeToken(got)
			require.NoError(t, err)
			require.Equal(t, c.in, back)
		})
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	for _, bad := range []string{"", "a.b", "~2", "~ZZ", "~2e", "~61", "a b", "*", ">"} {
		_, err := DecodeToken(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestSubjects(t *testing.T) {
	k := Key{Scope: scope.Scope{Type: scope.TypeProject, Name: "alpha"}, Namespace: "", Name: "worker-3.17a3b2c1d0e4f5a6"}
	subj := Subject(k)
	require.Equal(t, "events.Project.alpha._.worker-3~2E17a3b2c1d0e4f5a6", subj)
	back, err := ParseSubject(subj)
	require.NoError(t, err)
	require.Equal(t, k, back)

	ns := "prod"
	require.Equal(t, "events.Project.alpha.prod.*", FilterSubject(&k.Scope, &ns))
	require.Equal(t, "events.Platform._.*.*", FilterSubject(&scope.Platform, nil))
	require.Equal(t, "events.*.*.*.*", FilterSubject(nil, nil))

	for _, bad := range []string{"events.Project.alpha.prod", "x.Project.alpha.prod.n", "events.Tenant.a.prod.n",
		"events.Project._.prod.n", "events.Project.alpha.prod._", "events.Project.alpha.prod.n.extra"} {
		_, err := ParseSubject(bad)
		require.Error(t, err, bad)
	}
}

func TestSubjectMatches(t *testing.T) {
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	ns := "web"
	subj := Subject(Key{Scope: alpha, Namespace: "web", Name: "e.1"})
	require.True(t, SubjectMatches(FilterSubject(&alpha, &ns), subj))
	require.True(t, SubjectMatches(FilterSubject(&alpha, nil), subj))
	require.True(t, SubjectMatches(FilterSubject(nil, nil), subj))
	require.True(t, SubjectMatches(SubjectPrefix+".>", subj))
	other := "db"
	require.False(t, SubjectMatches(FilterSubject(&alpha, &other), subj))
	require.False(t, SubjectMatches(FilterSubject(&scope.Platform, nil), subj))
	require.False(t, SubjectMatches(subj+".x", subj))
	require.False(t, SubjectMatches("events.*.*.*", subj))
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "_", "a.b", "~41", "web-1.abc", "\x00\xff", "~", "~~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeToken(s)
		if enc == "" || strings.ContainsAny(enc, ".*> \t\r\n") {
			t.Fatalf("EncodeToken(%q) = %q is not a safe token", s, enc)
		}
		dec, err := DecodeToken(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip %q -> %q -> %q, %v", s, enc, dec, err)
		}
		// Decoding arbitrary input either fails or gives the one spelling
		// that encodes back to it.
		if v, err := DecodeToken(s); err == nil && EncodeToken(v) != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q", s, v, EncodeToken(v))
		}
	})
}

func FuzzParseSubject(f *testing.F) {
	f.Add("events.Project.alpha.prod.web~2E1")
	f.Add("events.Platform._._.n")
	f.Add("events...")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSubject(s)
		if err != nil {
			return
		}
		if Subject(k) != s {
			t.Fatalf("ParseSubject(%q) = %+v, which renders as %q", s, k, Subject(k))
		}
	})
}
