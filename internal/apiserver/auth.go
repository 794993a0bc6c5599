package apiserver

import (
	"context"
	"errors"
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
// (kube-apiserver's --token-auth-file format), then callers without
// credentials as anonymous. As in kube-apiserver, credentials that are
// presented but wrong are a 401, never a fall-back to anonymous.
func newAuthenticator(tokenFile string) (authenticator.Request, error) {
	var auths []authenticator.Request
	if tokenFile != "" {
		tf, err := tokenfile.NewCSV(tokenFile)
		if err != nil {
			return nil, err
		}
		auths = append(auths, bearertoken.New(tf))
	}
	return union.NewFailOnError(union.New(auths...), anonymousUnlessCredentials{}), nil
}

// anonymousUnlessCredentials is the anonymous authenticator for requests
// that carry no bearer token: with one, the token authenticator has already
// said no, and the request must fail.
type anonymousUnlessCredentials struct{}

func (anonymousUnlessCredentials) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.Header.Get("Authorization") != "" {
		return nil, false, errors.New("invalid bearer token")
	}
	return anonymousAuthenticator{}.AuthenticateRequest(req)
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
