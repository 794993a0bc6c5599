package apiserver

import (
	"context"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// anonymousAuthenticator lets requests without credentials through as
// system:anonymous, so that the authorizer can let them see health and
// version endpoints (as kube-apiserver's RBAC does) and refuse the rest
// with 403 rather than 401.
type anonymousAuthenticator struct{}

func (anonymousAuthenticator) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	return &authenticator.Response{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}}, true, nil
}

// newAuthenticator authenticates bearer tokens from a static token file
// (kube-apiserver's --token-auth-file format), then anonymous callers.
func newAuthenticator(tokenFile string) (authenticator.Request, error) {
	var auths []authenticator.Request
	if tokenFile != "" {
		tf, err := tokenfile.NewCSV(tokenFile)
		if err != nil {
			return nil, err
		}
		auths = append(auths, bearertoken.New(tf))
	}
	auths = append(auths, anonymousAuthenticator{})
	return union.New(auths...), nil
}

// publicPaths are readable by anyone, as kube-apiserver's
// system:public-info-viewer role allows.
var publicPaths = []string{"/healthz", "/livez", "/readyz", "/version"}

// groupAuthorizer allows everything to members of the configured platform
// groups, public paths to everyone, and nothing else. Tenant scoping and
// delegated authorization extend it.
type groupAuthorizer struct{ groups map[string]bool }

func (a groupAuthorizer) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	if u := attr.GetUser(); u != nil {
		for _, g := range u.GetGroups() {
			if a.groups[g] {
				return authorizer.DecisionAllow, "", nil
			}
		}
	}
	if !attr.IsResourceRequest() && attr.GetVerb() == "get" {
		p := attr.GetPath()
		for _, pp := range publicPaths {
			if p == pp || strings.HasPrefix(p, pp+"/") {
				return authorizer.DecisionAllow, "", nil
			}
		}
	}
	return authorizer.DecisionNoOpinion, "", nil
}
