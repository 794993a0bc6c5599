package tenancy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/eventpipe/eventpipe/internal/scope"
)

func tenant(typ, name string) map[string][]string {
	e := map[string][]string{}
	if typ != "-" {
		e[ExtraParentType] = []string{typ}
	}
	if name != "-" {
		e[ExtraParentName] = []string{name}
	}
	return e
}

func TestCaller(t *testing.T) {
	r := NewResolver([]string{"system:masters", "platform-admins"})
	for _, tc := range []struct {
		name string
		u    user.Info
		want Caller
		err  string
	}{
		{"platform group", &user.DefaultInfo{Name: "a", Groups: []string{"platform-admins"}}, Caller{Platform: true, Scope: scope.Platform}, ""},
		{"platform group wins over extras", &user.DefaultInfo{Name: "a", Groups: []string{"system:masters"}, Extra: tenant("Project", "x")}, Caller{Platform: true, Scope: scope.Platform}, ""},
		{"project", &user.DefaultInfo{Name: "b", Extra: tenant("Project", "alpha")}, Caller{Scope: scope.Scope{Type: "Project", Name: "alpha"}}, ""},
		{"organization", &user.DefaultInfo{Name: "b", Extra: tenant("Organization", "acme")}, Caller{Scope: scope.Scope{Type: "Organization", Name: "acme"}}, ""},
		{"user", &user.DefaultInfo{Name: "b", Extra: tenant("User", "bob")}, Caller{Scope: scope.Scope{Type: "User", Name: "bob"}}, ""},
		{"no extras", &user.DefaultInfo{Name: "c"}, Caller{}, "has no tenant scope: the user extras iam.miloapis.com/parent-type (one of Organization, Project, User) and iam.miloapis.com/parent-name are required"},
		{"type, no name", &user.DefaultInfo{Name: "c", Extra: tenant("Project", "-")}, Caller{}, `has the user extra iam.miloapis.com/parent-type "Project" but no iam.miloapis.com/parent-name; both are required`},
		{"type, empty name", &user.DefaultInfo{Name: "c", Extra: tenant("Project", "")}, Caller{}, "but no iam.miloapis.com/parent-name"},
		{"name, no type", &user.DefaultInfo{Name: "c", Extra: tenant("-", "alpha")}, Caller{}, "has no tenant scope"},
		{"wrong case", &user.DefaultInfo{Name: "c", Extra: tenant("project", "alpha")}, Caller{}, `has an unknown iam.miloapis.com/parent-type "project"; allowed (exact case): Organization, Project, User`},
		{"platform is not a tenant type", &user.DefaultInfo{Name: "c", Extra: tenant("Platform", "x")}, Caller{}, `unknown iam.miloapis.com/parent-type "Platform"`},
		{"two scopes", &user.DefaultInfo{Name: "c", Extra: map[string][]string{ExtraParentType: {"Project", "User"}, ExtraParentName: {"a"}}}, Caller{}, "more than one value"},
		{"nil user", nil, Caller{}, "is not authenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Caller(tc.u)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func ctxFor(u user.Info) context.Context {
	ctx := genericapirequest.WithUser(context.Background(), u)
	return genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{IsResourceRequest: true, Verb: "list", Resource: "events"})
}

func TestScopes(t *testing.T) {
	s := Scopes{Resolver: NewResolver([]string{"system:masters"})}
	alpha := &user.DefaultInfo{Name: "alice", Extra: tenant("Project", "alpha")}

	sc, err := s.ReadScope(ctxFor(&user.DefaultInfo{Name: "admin", Groups: []string{"system:masters"}}))
	require.NoError(t, err)
	require.Nil(t, sc, "platform callers read every scope")

	sc, err = s.ReadScope(ctxFor(alpha))
	require.NoError(t, err)
	require.Equal(t, &scope.Scope{Type: "Project", Name: "alpha"}, sc)

	_, err = s.ReadScope(ctxFor(&user.DefaultInfo{Name: "mallory"}))
	require.True(t, apierrors.IsForbidden(err), "%v", err)
	require.Equal(t, `events is forbidden: User "mallory" has no tenant scope: the user extras iam.miloapis.com/parent-type `+
		`(one of Organization, Project, User) and iam.miloapis.com/parent-name are required`, err.Error())

	// A tenant's claims are overwritten with its own scope.
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Annotations: map[string]string{
		scope.AnnotationType: "Project", scope.AnnotationName: "beta",
	}}}
	got, err := s.WriteScope(ctxFor(alpha), ev)
	require.NoError(t, err)
	require.Equal(t, scope.Scope{Type: "Project", Name: "alpha"}, got)
	require.Equal(t, "alpha", ev.Annotations[scope.AnnotationName])

	// A platform caller writes where the annotations say.
	ev = &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Annotations: map[string]string{
		scope.AnnotationType: "Project", scope.AnnotationName: "beta",
	}}}
	got, err = s.WriteScope(ctxFor(&user.DefaultInfo{Name: "admin", Groups: []string{"system:masters"}}), ev)
	require.NoError(t, err)
	require.Equal(t, scope.Scope{Type: "Project", Name: "beta"}, got)

	_, err = s.WriteScope(ctxFor(&user.DefaultInfo{Name: "mallory", Extra: tenant("Project", "-")}), ev)
	require.True(t, apierrors.IsForbidden(err), "%v", err)
}
