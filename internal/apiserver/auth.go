package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/webhook"
)

// anonymousAuthenticator lets requests without credentials through as
// system:anonymous, so that the authorizer can let them see health and
// version endpoints (as kube-apiserver's RBAC does) and refuse the rest
// with 403 rather than 401.
type anonymousAuthenticator struct{}

func (anonymousAuthenticator) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	return &authenticator.Response{User: &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}}, true, nil
}

// anonymousUnlessCredentials is the anonymous authenticator for requests
// that carry no bearer token: with one, the token authenticators have
// already said no, and the request must fail with 401, as in kube-apiserver.
type anonymousUnlessCredentials struct{}

func (anonymousUnlessCredentials) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.Header.Get("Authorization") != "" {
		return nil, false, errors.New("invalid bearer token")
	}
	return anonymousAuthenticator{}.AuthenticateRequest(req)
}

// hostClient returns a client of the host cluster named by kubeconfig, or
// nil when there is none.
func hostClient(kubeconfig string) (kubernetes.Interface, error) {
	if kubeconfig == "" {
		return nil, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// applyAuthentication builds the request authenticator, in kube-apiserver's
// order: the front proxy's request headers (only from a client whose
// certificate the request-header CA signed and whose name is allowed;
// anyone else's X-Remote-* headers are ignored), client certificates, static
// tokens, tokens the host cluster's TokenReview accepts, and finally
// anonymous for requests that present no credentials at all.
func (o *Options) applyAuthentication(gc *genericapiserver.RecommendedConfig) error {
	var auths []authenticator.Request
	if o.TokenAuthFile != "" {
		tf, err := readTokenFile(o.TokenAuthFile)
		if err != nil {
			return fmt.Errorf("read --token-auth-file %s: %w", o.TokenAuthFile, err)
		}
		auths = append(auths, bearertoken.New(tf))
	}
	client, err := hostClient(o.AuthenticationKubeconfig)
	if err != nil {
		return fmt.Errorf("--authentication-kubeconfig %s: %w", o.AuthenticationKubeconfig, err)
	}
	backoff := *genericoptions.DefaultAuthWebhookRetryBackoff()
	dc := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		CacheTTL:                 o.AuthenticationCacheTTL,
		TokenAccessReviewTimeout: o.AuthenticationTimeout,
		WebhookRetryBackoff:      &backoff,
	}
	delegated := false
	if client != nil {
		dc.TokenAccessReviewClient = client.AuthenticationV1()
		delegated = true
	}
	if o.ClientCert.ClientCA != "" {
		ca, err := o.ClientCert.GetClientCAContentProvider()
		if err != nil {
			return fmt.Errorf("--client-ca-file %s: %w", o.ClientCert.ClientCA, err)
		}
		dc.ClientCertificateCAContentProvider = ca
		if err := gc.Authentication.ApplyClientCert(ca, gc.SecureServing); err != nil {
			return fmt.Errorf("--client-ca-file %s: %w", o.ClientCert.ClientCA, err)
		}
		delegated = true
	}
	rh, err := o.requestHeaderConfig(client)
	if err != nil {
		return err
	}
	if rh != nil {
		dc.RequestHeaderConfig = rh
		gc.Authentication.RequestHeaderConfig = rh
		if err := gc.Authentication.ApplyClientCert(rh.CAContentProvider, gc.SecureServing); err != nil {
			return fmt.Errorf("front proxy CA: %w", err)
		}
		delegated = true
	}
	if delegated {
		a, _, err := dc.New()
		if err != nil {
			return fmt.Errorf("configure authentication: %w", err)
		}
		// The front proxy comes first: its requests carry its own
		// certificate and the user's identity in headers.
		auths = append([]authenticator.Request{a}, auths...)
	}
	// Every authenticated caller is in system:authenticated, as in
	// kube-apiserver, whichever authenticator knew it (a static token's
	// groups do not name it): that group may read discovery and OpenAPI.
	gc.Authentication.Authenticator = union.NewFailOnError(group.NewAuthenticatedGroupAdder(union.New(auths...)), anonymousUnlessCredentials{})
	return nil
}

// The host cluster publishes its front proxy's CA and request headers in
// this ConfigMap; kube-apiserver keeps it current.
const (
	authConfigMapNamespace = "kube-system"
	authConfigMapName      = "extension-apiserver-authentication"
)

// requestHeaderConfig says whom to trust as the front proxy: the files and
// headers given by flags, or else, with a host cluster to ask and unless
// --authentication-skip-lookup, what the host publishes in
// kube-system/extension-apiserver-authentication (as every aggregated API
// server does: in a pod there is no file to point at, and the CA rotates
// with the host). The looked-up CA is kept current by a controller that
// secure serving runs, because ApplyClientCert makes it part of the
// serving CA. Nil when there is no front proxy to trust.
func (o *Options) requestHeaderConfig(client kubernetes.Interface) (*authenticatorfactory.RequestHeaderConfig, error) {
	if o.RequestHeader.ClientCAFile != "" {
		rh, err := o.RequestHeader.ToAuthenticationRequestHeaderConfig()
		if err != nil {
			return nil, fmt.Errorf("--requestheader-client-ca-file %s: %w", o.RequestHeader.ClientCAFile, err)
		}
		return rh, nil
	}
	if client == nil || o.AuthenticationSkipLookup {
		return nil, nil
	}
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", authConfigMapNamespace, authConfigMapName,
		"requestheader-client-ca-file", client)
	if err != nil {
		return nil, fmt.Errorf("front proxy CA from %s/%s: %w", authConfigMapNamespace, authConfigMapName, err)
	}
	headers := headerrequest.NewRequestHeaderAuthRequestController(authConfigMapName, authConfigMapNamespace, client,
		"requestheader-username-headers", "requestheader-uid-headers", "requestheader-group-headers",
		"requestheader-extra-headers-prefix", "requestheader-allowed-names")
	c := &genericoptions.DynamicRequestHeaderController{ConfigMapCAController: ca, RequestHeaderAuthRequestController: headers}
	if err := c.RunOnce(context.Background()); err != nil {
		return nil, fmt.Errorf("read the front proxy's CA and headers from ConfigMap %s/%s in the host cluster "+
			"(--authentication-kubeconfig %s): %w; grant the Role extension-apiserver-authentication-reader in %s to "+
			"eventpipe's identity, give --requestheader-client-ca-file and its headers, or set --authentication-skip-lookup",
			authConfigMapNamespace, authConfigMapName, o.AuthenticationKubeconfig, err, authConfigMapNamespace)
	}
	slice := func(f func() []string) headerrequest.StringSliceProvider {
		return headerrequest.StringSliceProviderFunc(f)
	}
	return &authenticatorfactory.RequestHeaderConfig{
		CAContentProvider:   c,
		UsernameHeaders:     slice(c.UsernameHeaders),
		UIDHeaders:          slice(c.UIDHeaders),
		GroupHeaders:        slice(c.GroupHeaders),
		ExtraHeaderPrefixes: slice(c.ExtraHeaderPrefixes),
		AllowedClientNames:  slice(c.AllowedClientNames),
	}, nil
}

// publicPaths are readable by anyone, as kube-apiserver's
// system:public-info-viewer role allows.
var publicPaths = []string{"/healthz", "/livez", "/readyz", "/version"}

// discoveryPaths are readable by every authenticated caller, as
// kube-apiserver's system:discovery role allows, so that kubectl can find
// the resources it then asks for.
var discoveryPaths = []string{"/api", "/apis", "/openapi"}

// IngestPath is where the webhook receiver takes events; every caller with
// a scope may post to it (the events are stamped with that scope).
const IngestPath = "/ingest/v1/events"

// AuditIngestPath is where the audit receiver takes kube-apiserver's audit
// batches; every caller with a scope may post to it (the records are
// stamped with that scope).
const AuditIngestPath = webhook.AuditPath

func isIngestPath(p string) bool { return p == IngestPath || p == AuditIngestPath }

func pathIn(p string, paths []string) bool {
	for _, pp := range paths {
		if p == pp || strings.HasPrefix(p, pp+"/") {
			return true
		}
	}
	return false
}

// platformAuthorizer allows everything to members of the platform groups,
// and public paths to everyone.
type platformAuthorizer struct{ tenants *tenancy.Resolver }

func (a platformAuthorizer) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.tenants.IsPlatform(attr.GetUser()) {
		return authorizer.DecisionAllow, "", nil
	}
	if !attr.IsResourceRequest() && attr.GetVerb() == "get" && pathIn(attr.GetPath(), publicPaths) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// tenantAuthorizer is the standalone server's authorizer for everyone
// else: a caller with a complete tenant scope may use every resource (the
// registries keep it inside its scope) and read discovery; a caller
// without one may do nothing, and is told why. When eventpipe is
// aggregated, the host cluster's RBAC (SubjectAccessReview) decides instead.
type tenantAuthorizer struct{ tenants *tenancy.Resolver }

func (a tenantAuthorizer) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attr.GetUser()
	if !attr.IsResourceRequest() && attr.GetVerb() == "get" && pathIn(attr.GetPath(), discoveryPaths) && isAuthenticated(u) {
		return authorizer.DecisionAllow, "", nil
	}
	if _, err := a.tenants.Caller(u); err != nil {
		return authorizer.DecisionNoOpinion, "the user " + err.Error(), nil
	}
	if attr.IsResourceRequest() && attr.GetAPIGroup() == activityGroup && attr.GetResource() == "activitypolicies" && !readVerbs[attr.GetVerb()] {
		// Policies shape every tenant's activities: tenants may read them,
		// only the platform may change them.
		return authorizer.DecisionNoOpinion, "ActivityPolicies apply to every tenant; only platform callers may change them", nil
	}
	if attr.IsResourceRequest() || (attr.GetVerb() == "post" && isIngestPath(attr.GetPath())) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

const activityGroup = "activity.miloapis.com"

var readVerbs = map[string]bool{"get": true, "list": true, "watch": true}

func isAuthenticated(u user.Info) bool {
	if u == nil {
		return false
	}
	for _, g := range u.GetGroups() {
		if g == user.AllAuthenticated {
			return true
		}
	}
	return false
}

// applyAuthorization builds the authorizer: platform groups and public
// paths first, then the host cluster's SubjectAccessReview when
// --authorization-kubeconfig is set, else the standalone tenant rules.
func (o *Options) applyAuthorization(gc *genericapiserver.RecommendedConfig, tenants *tenancy.Resolver) error {
	rest := namedAuthorizer("eventpipe.miloapis.com/tenants", authorizer.AuthorizerFunc(tenantAuthorizer{tenants: tenants}.Authorize))
	client, err := hostClient(o.AuthorizationKubeconfig)
	if err != nil {
		return fmt.Errorf("--authorization-kubeconfig %s: %w", o.AuthorizationKubeconfig, err)
	}
	if client != nil {
		backoff := *genericoptions.DefaultAuthWebhookRetryBackoff()
		delegated, err := authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: client.AuthorizationV1(),
			AllowCacheTTL:             o.AuthorizationCacheTTL,
			DenyCacheTTL:              o.AuthorizationCacheTTL,
			WebhookRetryBackoff:       &backoff,
		}.New()
		if err != nil {
			return fmt.Errorf("configure delegated authorization: %w", err)
		}
		rest = namedAuthorizer("kubernetes.io/webhook", delegated)
	}
	a, err := authzunion.New(
		namedAuthorizer("eventpipe.miloapis.com/platform", authorizer.AuthorizerFunc(platformAuthorizer{tenants: tenants}.Authorize)), rest)
	if err != nil {
		return fmt.Errorf("configure authorization: %w", err)
	}
	gc.Authorization.Authorizer = a
	return nil
}

func namedAuthorizer(name string, a authorizer.Authorizer) authzunion.NamedAuthorizer {
	return authzunion.NamedAuthorizer{AuthorizerName: name, Authorizer: a}
}
