package apiserver

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/eventpipe/eventpipe/internal/webhook"
)

// installIngest serves the webhook receivers (POST /ingest/v1/events, and
// /ingest/v1/audit when there is an audit log) behind the server's whole
// filter chain: the same authentication and authorization as the API, and
// the caller's scope stamps the events and audit records through the same
// Scopes as the Events API's writes.
func (c CompletedConfig) installIngest(gs *genericapiserver.GenericAPIServer) {
	// IngestPath is the path the authorizer lets tenant callers post to;
	// mounting there keeps the two in step.
	cfg := webhook.DefaultConfig()
	if c.backends.Tiers != nil {
		cfg.Admission = c.backends.Tiers // rate limits and quota, per request
	}
	gs.Handler.NonGoRestfulMux.Handle(IngestPath, webhook.New(c.backends.Log, c.scopes, cfg))
	if c.backends.AuditLog != nil {
		gs.Handler.NonGoRestfulMux.Handle(AuditIngestPath, webhook.NewAudit(c.backends.AuditLog, c.scopes, webhook.DefaultAuditConfig()))
	}
	gs.Handler.FullHandlerChain = requireCredentials(c.generic.Authentication.Authenticator, gs.Handler.FullHandlerChain)
}

// requireCredentials answers 401 to an ingest request that does not
// authenticate as someone. The API lets such callers in as
// system:anonymous so that health checks work without a token, and the
// authorizer then refuses them with 403; an ingest must be attributable to
// a caller whose scope stamps the events, so a missing identity is an
// authentication failure. Other paths pass untouched.
func requireCredentials(authn authenticator.Request, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isIngestPath(r.URL.Path) || authn == nil {
			next.ServeHTTP(w, r)
			return
		}
		// On a clone: token authenticators strip the Authorization header
		// of the request they accept, and the chain must see it again.
		resp, ok, err := authn.AuthenticateRequest(r.Clone(r.Context()))
		if err != nil || !ok || resp.User.GetName() == user.Anonymous {
			st := &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusFailure, Code: http.StatusUnauthorized, Reason: metav1.StatusReasonUnauthorized,
				Message: "Unauthorized: " + r.URL.Path + " needs credentials (a bearer token or client certificate); anonymous ingest is not allowed"}
			responsewriters.WriteRawJSON(http.StatusUnauthorized, st, w)
			return
		}
		next.ServeHTTP(w, r)
	})
}
