package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/internal/freeport"
)

const (
	// AdminUser is the user of Cluster.AdminToken, in group system:masters.
	AdminUser = "admin"
	// ServiceClusterIPRange is kube-apiserver's --service-cluster-ip-range:
	// a configuration value only, nothing routes to it.
	ServiceClusterIPRange = "10.0.0.0/24"
	// ServiceAccountIssuer is kube-apiserver's --service-account-issuer.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// FrontProxyClientName is the common name of the client certificate
	// kube-apiserver presents to aggregated API servers, and the only name
	// its --requestheader-allowed-names allows.
	FrontProxyClientName = "front-proxy-client"
	// DefaultStartTimeout bounds StartCluster's wait for /readyz.
	DefaultStartTimeout = 60 * time.Second
)

// User is a static-token user of kube-apiserver (--token-auth-file). That
// file holds only a name, a uid and groups: no extra fields.
type User struct {
	Name string
	// UID defaults to Name.
	UID string
	// Token defaults to a random one (see Cluster.Users).
	Token  string
	Groups []string
}

// Options configure StartCluster. The zero value is a cluster with RBAC and
// only the admin user.
type Options struct {
	// Users are static-token users besides AdminUser. Give them
	// permissions with RBAC objects, or set AlwaysAllow.
	Users []User
	// AlwaysAllow runs with --authorization-mode=AlwaysAllow instead of
	// Node,RBAC.
	AlwaysAllow bool
	// EventTTL is --event-ttl; 0 keeps kube-apiserver's default, 1h.
	EventTTL time.Duration
	// ExtraArgs are appended to kube-apiserver's flags, for example
	// "--enable-aggregator-routing=true". A repeated single-valued flag
	// overrides the harness's value; a repeated list flag (such as
	// --enable-admission-plugins) adds to it.
	ExtraArgs []string
	// StartTimeout bounds the wait for /readyz; 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
}

// Cluster is a running etcd and kube-apiserver for one test, stopped at the
// test's cleanup. Its fields are set by StartCluster and must not be changed.
type Cluster struct {
	// URL is kube-apiserver's address, https://127.0.0.1:PORT.
	URL string
	// Config is a client configuration for AdminUser, without client-side
	// rate limit (QPS -1). Copy it (rest.CopyConfig) before changing it.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for AdminUser.
	Kubeconfig string
	// AdminToken is the bearer token of AdminUser (group system:masters).
	AdminToken string
	// Users holds Options.Users by name, with defaults (token, uid) filled
	// in.
	Users map[string]User
	// CAFile is the PEM file of the CA that signed kube-apiserver's serving
	// certificate (for 127.0.0.1, localhost and kubernetes.default.svc);
	// CAData is its content.
	CAFile string
	CAData []byte
	// FrontProxyCAFile is the CA of --requestheader-client-ca-file: the
	// aggregator's client certificate (FrontProxyClientName) is signed by
	// it, and kube-apiserver publishes it to aggregated API servers in the
	// kube-system/extension-apiserver-authentication ConfigMap.
	FrontProxyCAFile string
	// EtcdURL is etcd's client URL, http://127.0.0.1:PORT.
	EtcdURL string
	// Dir holds the configuration, data and logs (etcd.log,
	// kube-apiserver.log); it is removed after the test.
	Dir string
	// StartDuration is how long StartCluster took.
	StartDuration time.Duration

	tb        testing.TB
	etcd      *process
	apiserver *process
	// apiserverBin, apiserverArgs and startTimeout start kube-apiserver
	// again (RestartAPIServer).
	apiserverBin  string
	apiserverArgs []string
	startTimeout  time.Duration

	mu          sync.Mutex // guards kubeconfigs
	kubeconfigs int
}

// APIServerPID is the process ID of kube-apiserver, for benchmarks that
// read its CPU time and memory from /proc.
func (c *Cluster) APIServerPID() int { return c.apiserver.cmd.Process.Pid }

// EtcdPID is the process ID of etcd.
func (c *Cluster) EtcdPID() int { return c.etcd.cmd.Process.Pid }

// StartCluster starts etcd and kube-apiserver on free ports of 127.0.0.1
// in a temporary directory and returns once /readyz answers and the default
// namespace exists. Both are stopped (SIGTERM, then SIGKILL after
// StopTimeout) and waited for at the test's cleanup. Without the binaries
// the test is skipped (failed with CI=true); see Binaries.
func StartCluster(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	start := time.Now()
	apiserverBin, _, etcdBin := Binaries(tb)
	c := &Cluster{tb: tb, Dir: tb.TempDir(), Users: map[string]User{}}
	tb.Cleanup(c.cleanup)

	args, err := c.prepare(opts)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	if err := c.startEtcd(etcdBin); err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	c.apiserverBin, c.apiserverArgs, c.startTimeout = apiserverBin, args, timeout
	if err := c.startAPIServer(apiserverBin, args, timeout); err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	c.StartDuration = time.Since(start)
	tb.Logf("kubetest: kube-apiserver %s and etcd %s ready in %s (logs in %s)", c.URL, c.EtcdURL, c.StartDuration.Round(time.Millisecond), c.Dir)
	return c
}

// prepare writes certificates, keys and the token file, and returns
// kube-apiserver's flags less those naming ports.
func (c *Cluster) prepare(opts Options) ([]string, error) {
	path := func(name string) string { return filepath.Join(c.Dir, name) }
	write := func(name string, data []byte, mode os.FileMode) error {
		return os.WriteFile(path(name), data, mode)
	}

	// Serving certificate.
	ca, err := newAuthority("kubetest-ca")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.issue(leaf{
		cn:     "kube-apiserver",
		dns:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:    []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	// Front proxy: what the aggregator authenticates with to aggregated API
	// servers, as kubeadm sets it up.
	fpCA, err := newAuthority("kubetest-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	fpCert, fpKey, err := fpCA.issue(leaf{cn: FrontProxyClientName, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, err
	}
	c.CAFile, c.CAData, c.FrontProxyCAFile = path("ca.crt"), ca.pem, path("front-proxy-ca.crt")
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.crt", ca.pem, 0o644},
		{"apiserver.crt", servingCert, 0o644},
		{"apiserver.key", servingKey, 0o600},
		{"front-proxy-ca.crt", fpCA.pem, 0o644},
		{"front-proxy-client.crt", fpCert, 0o644},
		{"front-proxy-client.key", fpKey, 0o600},
	} {
		if err := write(f.name, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	if err := writeServiceAccountKeys(path("sa.key"), path("sa.pub")); err != nil {
		return nil, err
	}

	// Static tokens.
	c.AdminToken = randomToken()
	users := []User{{Name: AdminUser, Token: c.AdminToken, Groups: []string{"system:masters"}}}
	for _, u := range opts.Users {
		if u.Name == "" || u.Name == AdminUser {
			return nil, fmt.Errorf("user name %q: must be set and not %q", u.Name, AdminUser)
		}
		if _, dup := c.Users[u.Name]; dup {
			return nil, fmt.Errorf("user %q given twice", u.Name)
		}
		if u.Token == "" {
			u.Token = randomToken()
		}
		if u.UID == "" {
			u.UID = u.Name
		}
		u.Groups = append([]string(nil), u.Groups...)
		c.Users[u.Name] = u
		users = append(users, u)
	}
	if err := writeTokenFile(path("tokens.csv"), users); err != nil {
		return nil, err
	}

	authz := "Node,RBAC"
	if opts.AlwaysAllow {
		authz = "AlwaysAllow"
	}
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints would be 127.0.0.1, which
		// Endpoints validation refuses (loopback); nothing routes to it.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + path("certs"),
		"--tls-cert-file=" + path("apiserver.crt"),
		"--tls-private-key-file=" + path("apiserver.key"),
		"--token-auth-file=" + path("tokens.csv"),
		"--authorization-mode=" + authz,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + path("sa.pub"),
		"--service-account-signing-key-file=" + path("sa.key"),
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		// No controller-manager runs to create service accounts and their
		// tokens, so pods would be refused for lack of a "default" one.
		"--disable-admission-plugins=ServiceAccount",
		"--requestheader-client-ca-file=" + path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + path("front-proxy-client.crt"),
		"--proxy-client-key-file=" + path("front-proxy-client.key"),
	}
	if opts.EventTTL > 0 {
		args = append(args, "--event-ttl="+opts.EventTTL.String())
	}
	return append(args, opts.ExtraArgs...), nil
}

// writeTokenFile writes kube-apiserver's --token-auth-file:
// token,user,uid,"group1,group2".
func writeTokenFile(path string, users []User) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	for _, u := range users {
		uid := u.UID
		if uid == "" {
			uid = u.Name
		}
		for _, v := range append([]string{u.Token, u.Name, uid}, u.Groups...) {
			if v == "" || strings.ContainsAny(v, ",\"\r\n") {
				f.Close()
				return fmt.Errorf("user %q: token, name, uid and groups must be non-empty and free of commas, quotes and newlines: %q", u.Name, v)
			}
		}
		_ = w.Write([]string{u.Token, u.Name, uid, strings.Join(u.Groups, ",")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	return f.Close()
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startEtcd starts etcd and waits for its /health; it retries with other
// ports when one was taken meanwhile.
func (c *Cluster) startEtcd(bin string) error {
	for attempt := 1; ; attempt++ {
		err := c.tryStartEtcd(bin, attempt)
		if errors.Is(err, errPortInUse) && attempt < 3 {
			continue
		}
		return err
	}
}

func (c *Cluster) tryStartEtcd(bin string, attempt int) error {
	ports, err := freeport.Ports(2)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	dataDir := filepath.Join(c.Dir, "etcd", strconv.Itoa(attempt))
	args := []string{
		"--name=kubetest",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--logger=zap",
		"--log-outputs=stderr",
	}
	// etcd reads its configuration from ETCD_* variables too.
	p, err := startProcess("etcd", bin, args, environ("ETCD_"), c.Dir, filepath.Join(c.Dir, "etcd.log"))
	if err != nil {
		return err
	}
	c.etcd = p
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exited, exitErr := p.exited(); exited {
			if p.portInUse() {
				return errPortInUse
			}
			return fmt.Errorf("etcd exited while starting (%v); the end of %s:\n%s", exitErr, p.log, p.tail(30))
		}
		resp, err := client.Get(clientURL + "/health")
		if err == nil {
			var h struct {
				Health string `json:"health"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Health == "true" {
				c.EtcdURL = clientURL
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy at %s after 30s; the end of %s:\n%s", clientURL, p.log, p.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startAPIServer starts kube-apiserver and waits until it is ready; it
// retries with another port when the one chosen was taken meanwhile.
func (c *Cluster) startAPIServer(bin string, args []string, timeout time.Duration) error {
	for attempt := 1; ; attempt++ {
		err := c.tryStartAPIServer(bin, args, timeout)
		if errors.Is(err, errPortInUse) && attempt < 3 {
			continue
		}
		return err
	}
}

func (c *Cluster) tryStartAPIServer(bin string, args []string, timeout time.Duration) error {
	ports, err := freeport.Ports(1)
	if err != nil {
		return err
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	full := append([]string{
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--etcd-servers=" + c.EtcdURL,
	}, args...)
	logPath := filepath.Join(c.Dir, "kube-apiserver.log")
	p, err := startProcess("kube-apiserver", bin, full, environ("KUBECONFIG"), c.Dir, logPath)
	if err != nil {
		return err
	}
	c.apiserver = p

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAData)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, c.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, string(body), nil
	}

	deadline := time.Now().Add(timeout)
	var last string
	for {
		if exited, exitErr := p.exited(); exited {
			if p.portInUse() {
				return errPortInUse
			}
			return fmt.Errorf("kube-apiserver exited while starting (%v); the end of %s:\n%s", exitErr, p.log, p.tail(40))
		}
		// Ready, and the bootstrap controller has made the default
		// namespace (tests write there at once).
		code, body, err := get("/readyz")
		switch {
		case err != nil:
			last = err.Error()
		case code != http.StatusOK:
			last = fmt.Sprintf("/readyz: %d %s", code, body)
		default:
			code, body, err = get("/api/v1/namespaces/default")
			if err == nil && code == http.StatusOK {
				c.Config = c.ConfigFor(c.AdminToken)
				c.Kubeconfig = c.KubeconfigFor(AdminUser, c.AdminToken)
				return nil
			}
			last = fmt.Sprintf("namespace default: %d %s %v", code, body, err)
		}
		if time.Now().After(deadline) {
			if _, verbose, err := get("/readyz?verbose"); err == nil {
				last = verbose
			}
			return fmt.Errorf("kube-apiserver at %s not ready after %s: %s\nthe end of %s:\n%s", c.URL, timeout, last, p.log, p.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RestartAPIServer stops kube-apiserver (SIGTERM) and starts it again with
// the same flags and etcd, as an operator's restart would, and returns once
// it is ready. It listens on a new port: URL, Config and Kubeconfig change.
// It must be called from the test's goroutine.
func (c *Cluster) RestartAPIServer() {
	c.tb.Helper()
	c.apiserver.stop()
	if err := c.startAPIServer(c.apiserverBin, c.apiserverArgs, c.startTimeout); err != nil {
		c.tb.Fatalf("kubetest: restart: %v", err)
	}
}

// cleanup stops kube-apiserver, then etcd, and waits for both.
func (c *Cluster) cleanup() {
	// A start failure has already reported the end of the log.
	if c.tb.Failed() && c.apiserver != nil && c.Config != nil {
		c.tb.Logf("kubetest: the end of %s:\n%s", c.apiserver.log, c.apiserver.tail(20))
	}
	if c.apiserver != nil {
		c.apiserver.stop()
	}
	if c.etcd != nil {
		c.etcd.stop()
	}
}

// ConfigFor returns a client configuration for the user of token, with the
// cluster's CA and without client-side rate limit.
func (c *Cluster) ConfigFor(token string) *rest.Config {
	return &rest.Config{
		Host:            c.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.CAData...)},
		QPS:             -1,
		UserAgent:       "kubetest",
	}
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// KubeconfigFor writes a kubeconfig for user with bearer token into the
// cluster's directory and returns its path. Its context's namespace is
// "default". When the file cannot be written it marks the test failed
// (Errorf: safe from subtests and other goroutines).
func (c *Cluster) KubeconfigFor(user, token string) string {
	c.mu.Lock()
	c.kubeconfigs++
	n := c.kubeconfigs
	c.mu.Unlock()
	path := filepath.Join(c.Dir, fmt.Sprintf("kubeconfig-%d-%s", n, unsafeFileChars.ReplaceAllString(user, "_")))
	if err := writeKubeconfig(path, c.URL, c.CAData, user, token); err != nil {
		c.tb.Errorf("kubetest: %v", err)
	}
	return path
}

// writeKubeconfig writes a kubeconfig as JSON, which kubeconfig loaders
// read like YAML; no quoting questions.
func writeKubeconfig(path, server string, caData []byte, user, token string) error {
	ctx := user + "@kubetest"
	cfg := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []map[string]any{{
			"name":    "kubetest",
			"cluster": map[string]any{"server": server, "certificate-authority-data": caData},
		}},
		"users": []map[string]any{{
			"name": user,
			"user": map[string]any{"token": token},
		}},
		"contexts": []map[string]any{{
			"name":    ctx,
			"context": map[string]any{"cluster": "kubetest", "user": user, "namespace": "default"},
		}},
		"current-context": ctx,
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
