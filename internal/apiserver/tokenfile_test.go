package apiserver

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenFile(t *testing.T) {
	tf, err := parseTokenFile(strings.NewReader(`t1,admin,1,"system:masters"
t2,alice,2,"",` + `"iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=alpha"

t3,bob,3
`))
	require.NoError(t, err)
	r, ok, err := tf.AuthenticateToken(context.Background(), "t2")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "alice", r.User.GetName())
	require.Empty(t, r.User.GetGroups())
	require.Equal(t, map[string][]string{
		"iam.miloapis.com/parent-type": {"Project"}, "iam.miloapis.com/parent-name": {"alpha"},
	}, r.User.GetExtra())
	r, ok, _ = tf.AuthenticateToken(context.Background(), "t1")
	require.True(t, ok)
	require.Equal(t, []string{"system:masters"}, r.User.GetGroups())
	_, ok, _ = tf.AuthenticateToken(context.Background(), "nope")
	require.False(t, ok)

	for in, want := range map[string]string{
		"t,u,1\nt,v,2\n":          `line 2: the token of user "v" is already used on an earlier line`,
		",u,1\n":                  "line 1: the token is empty",
		"t,,1\n":                  "line 1: the user name is empty",
		"t,u\n":                   "line 1: want token,user,uid",
		`t,u,1,"",` + `"novalue"`: `line 1: extra "novalue" is not key=value`,
		"t,u,1,a,b,c\n":           "got 6 columns",
	} {
		_, err := parseTokenFile(strings.NewReader(in))
		require.ErrorContains(t, err, want, "input %q", in)
	}
}

// FuzzTokenFile: any input parses or fails with an error; never panics,
// and every parsed user has a token and a name.
func FuzzTokenFile(f *testing.F) {
	f.Add("t1,admin,1,\"system:masters\"\n")
	f.Add(`t2,alice,2,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=alpha"`)
	f.Add("\"unterminated,u,1\n")
	f.Add("a,b,c,d,e,f\n")
	f.Fuzz(func(t *testing.T, in string) {
		tf, err := parseTokenFile(strings.NewReader(in))
		if err != nil {
			return
		}
		for tok, u := range tf.users {
			if tok == "" || u.Name == "" {
				t.Fatalf("parsed a user without token or name: %q %+v", tok, u)
			}
		}
	})
}
