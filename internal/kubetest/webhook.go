package kubetest

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tenancy"
)

// TenantUser is a user of a TenantWebhook: a tenant of the scope, in group
// TenantsGroup.
type TenantUser struct {
	Name  string
	Scope scope.Scope
}

// TenantsGroup is the group of every TenantWebhook user.
const TenantsGroup = "tenants"

// TenantWebhook serves kube-apiserver's token authentication webhook for
// users by bearer token, giving each its scope as user extras (as a
// platform's authenticator would), until the test ends. It returns the
// kube-apiserver flags that use it.
func TenantWebhook(tb testing.TB, users map[string]TenantUser) []string {
	tb.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tr authnv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u, ok := users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok}
		if ok {
			tr.Status.User = authnv1.UserInfo{Username: u.Name, UID: u.Name, Groups: []string{TenantsGroup}, Extra: map[string]authnv1.ExtraValue{
				tenancy.ExtraParentType: {u.Scope.Type}, tenancy.ExtraParentName: {u.Scope.Name},
			}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&tr)
	}))
	tb.Cleanup(srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["webhook"] = &clientcmdapi.Cluster{Server: srv.URL + "/authenticate",
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	cfg.AuthInfos["apiserver"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "apiserver"}
	cfg.CurrentContext = "webhook"
	path := filepath.Join(tb.TempDir(), "webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		tb.Fatal(err)
	}
	return []string{"--authentication-token-webhook-config-file=" + path, "--authentication-token-webhook-version=v1"}
}
