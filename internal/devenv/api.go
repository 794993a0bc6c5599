package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/roles"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tenancy"
	"github.com/eventpipe/eventpipe/internal/webhook"
)

type runningAPI struct {
	url               string
	uiURL             string
	kubeconfig        string
	auditWebhook      string
	tenantKubeconfigs []TenantKubeconfig
	done              chan error
}

// TenantKubeconfig is a kubeconfig of a user inside one demo tenant.
type TenantKubeconfig struct {
	Scope scope.Scope
	User  string
	Path  string
	// UIURL opens the web UI logged in as this user (the token rides in
	// the URL's fragment, which the browser never sends).
	UIURL string
}

// startAPIServer runs the API server role on 127.0.0.1 with a self-signed
// certificate kept under DIR/apiserver and a platform-admin token kept in
// DIR/apiserver/tokens.csv, and writes DIR/kubeconfig for it.
func startAPIServer(ctx context.Context, dir string, o Options, c *roles.Conns, tiersFile string, log *slog.Logger) (*runningAPI, error) {
	apiDir := filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(apiDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", apiDir, err)
	}
	tokens, tokenFile, err := devTokens(apiDir)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.APIServerPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for the API server on 127.0.0.1:%d (--apiserver.port): %w", o.APIServerPort, err)
	}
	ao := roles.NewAPIServerOptions()
	ao.Complete()
	ao.Server.SecureServing.Listener = l
	ao.Server.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	ao.Server.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port
	ao.Server.SecureServing.ServerCert.CertDirectory = filepath.Join(apiDir, "certs")
	ao.Server.TokenAuthFile = tokenFile
	ao.Tiers.Config = tiersFile
	ao.Activities = o.Activities
	if o.ConfigureAPIServer != nil {
		o.ConfigureAPIServer(ao.Server)
	}
	srv, err := roles.NewAPIServer(ctx, c, ao, roleRegistry(o.Registry, "apiserver"), log)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	api := &runningAPI{url: "https://" + l.Addr().String(), kubeconfig: filepath.Join(dir, "kubeconfig"), done: make(chan error, 1)}
	go func() { api.done <- srv.Run(ctx) }()

	cert := ao.Server.SecureServing.ServerCert
	caFile := filepath.Join(cert.CertDirectory, cert.PairName+".crt")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the API server's certificate: %w", err)
	}
	for _, u := range devUsers {
		path := filepath.Join(dir, u.file)
		if err := writeKubeconfig(path, api.url+u.path, ca, "eventpipe-dev", u.name, tokens[u.name]); err != nil {
			return nil, err
		}
		if u.path == webhook.AuditPath {
			api.auditWebhook = path
			continue
		}
		ui := uiURL(api.url, tokens[u.name])
		if u.scope.IsPlatform() {
			api.uiURL = ui
		} else {
			api.tenantKubeconfigs = append(api.tenantKubeconfigs, TenantKubeconfig{Scope: u.scope, User: u.name, Path: path, UIURL: ui})
		}
	}
	if err := waitReady(ctx, api, ca); err != nil {
		return nil, err
	}
	log.Info("API server ready", "url", api.url, "kubeconfig", api.kubeconfig)
	return api, nil
}

// uiURL is the web UI's address with a dev user's token in the fragment:
// the page moves it to the tab's session storage and out of the address
// bar. The server itself serves no data without a token.
func uiURL(apiURL, token string) string {
	return apiURL + "/ui/#token=" + token
}

// devUser is one of the users dev mode writes a kubeconfig for.
type devUser struct {
	name   string
	groups string // quoted CSV, as the token file has them
	scope  scope.Scope
	file   string // the kubeconfig's file name in the data directory
	path   string // appended to the server URL in the kubeconfig
}

// devUsers are a platform admin, one user in each demo tenant, and the
// identity a kube-apiserver's audit webhook posts as: its kubeconfig is the
// file --audit-webhook-config-file names, and its scope is the etcd front's,
// so that the cluster's requests and the events they cause share a scope
// (Activities are tied within one scope).
var devUsers = []devUser{
	{name: "admin", groups: "system:masters", scope: scope.Platform, file: "kubeconfig"},
	{name: "alice", scope: Tenants[0], file: "kubeconfig-project-alpha"},
	{name: "bob", scope: Tenants[1], file: "kubeconfig-project-beta"},
	{name: "kube-apiserver-audit", scope: EtcdScope, file: "audit-webhook.kubeconfig", path: webhook.AuditPath},
}

// devTokens reads the dev users' tokens from DIR/apiserver/tokens.csv,
// creating those that are missing, so that kubeconfigs keep working across
// restarts. Tenant users carry their scope as user extras. Lines of other
// users, added by hand, are kept.
func devTokens(apiDir string) (tokens map[string]string, file string, err error) {
	file = filepath.Join(apiDir, "tokens.csv")
	tokens = map[string]string{}
	isDevUser := map[string]bool{}
	for _, u := range devUsers {
		isDevUser[u.name] = true
	}
	var kept []string
	if b, err := os.ReadFile(file); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			tok, rest, ok := strings.Cut(line, ",")
			if !ok || tok == "" {
				continue
			}
			user, _, _ := strings.Cut(rest, ",")
			if isDevUser[user] {
				tokens[user] = tok
			} else {
				kept = append(kept, line)
			}
		}
	}
	var out strings.Builder
	for _, line := range kept {
		out.WriteString(line + "\n")
	}
	for _, u := range devUsers {
		tok := tokens[u.name]
		if tok == "" {
			buf := make([]byte, 24)
			if _, err := rand.Read(buf); err != nil {
				return nil, "", fmt.Errorf("generate a token for %s: %w", u.name, err)
			}
			tok = hex.EncodeToString(buf)
			tokens[u.name] = tok
		}
		fmt.Fprintf(&out, "%s,%s,%s,%q", tok, u.name, u.name, u.groups)
		if !u.scope.IsPlatform() {
			fmt.Fprintf(&out, ",\"%s=%s,%s=%s\"", tenancy.ExtraParentType, u.scope.Type, tenancy.ExtraParentName, u.scope.Name)
		}
		out.WriteString("\n")
	}
	if err := os.WriteFile(file, []byte(out.String()), 0o600); err != nil {
		return nil, "", fmt.Errorf("write %s: %w", file, err)
	}
	return tokens, file, nil
}

func writeKubeconfig(path, server string, ca []byte, cluster, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = cluster
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func waitReady(ctx context.Context, api *runningAPI, ca []byte) error {
	rc, err := clientcmd.BuildConfigFromFlags("", api.kubeconfig)
	if err != nil {
		return fmt.Errorf("read %s: %w", api.kubeconfig, err)
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-api.done:
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("API server: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := hc.Get(api.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API server at %s not ready after 60s: %v", api.url, err)
		}
	}
}

// apiSink writes the simulated cluster's events through the Events API, as
// a controller's recorder would, with the tenant's scope in annotations
// (the demo writes as a platform admin, who may write into any scope).
type apiSink struct {
	cs *kubernetes.Clientset
}

func newAPISink(kubeconfig string) (*apiSink, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kubeconfig, err)
	}
	rc.QPS, rc.Burst = -1, 0 // the generator paces itself
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &apiSink{cs: cs}, nil
}

func (s *apiSink) Write(ctx context.Context, op eventlog.Op, sc scope.Scope, ev *corev1.Event) error {
	ev = ev.DeepCopy()
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[scope.AnnotationType] = sc.Type
	ev.Annotations[scope.AnnotationName] = sc.Name
	ev.ResourceVersion, ev.UID, ev.CreationTimestamp, ev.ManagedFields = "", "", metav1.Time{}, nil
	events := s.cs.CoreV1().Events(ev.Namespace)
	var err error
	switch op {
	case eventlog.OpCreate:
		_, err = events.Create(ctx, ev, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case eventlog.OpUpdate:
		_, err = events.Update(ctx, ev, metav1.UpdateOptions{})
	case eventlog.OpDelete:
		err = events.Delete(ctx, ev.Name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			err = nil
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}
