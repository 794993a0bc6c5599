package etcdfront_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// hostTenants are the host's webhook-authenticated users, by bearer token:
// carol is in the front's scope (devenv.EtcdScope), dave in another one.
var hostTenants = map[string]kubetest.TenantUser{
	"tok-carol": {Name: "carol", Scope: devenv.EtcdScope},
	"tok-dave":  {Name: "dave", Scope: scope.Scope{Type: scope.TypeProject, Name: "elsewhere"}},
}

// startAggregatedAPIServer runs `eventpipe apiserver` as a process of its
// own on dev mode's NATS and ClickHouse, trusting the host's front proxy
// and delegating authentication and authorization to the host, and
// returns its port once it is ready. It is stopped at the test's cleanup.
func startAggregatedAPIServer(t *testing.T, env *devenv.Env, host *kubetest.Cluster) int {
	t.Helper()
	bin, err := devtest.BuildEventpipe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	port := devtest.FreePort(t)
	dir := t.TempDir()
	args := []string{"apiserver", "--nats.url", env.NATSURL, "--clickhouse.addr", env.ClickHouseAddr,
		"--clickhouse.database", env.Database,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port), "--cert-dir", filepath.Join(dir, "certs"),
		"--requestheader-client-ca-file", host.FrontProxyCAFile,
		"--requestheader-allowed-names", kubetest.FrontProxyClientName,
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-uid-headers", "X-Remote-Uid",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--authentication-kubeconfig", host.Kubeconfig,
		"--authorization-kubeconfig", host.Kubeconfig}
	// Dev mode's tiers (the front's scope on Enterprise), as the front has.
	if tiers := filepath.Join(filepath.Dir(env.Kubeconfig), "tiers.yaml"); fileExists(tiers) {
		args = append(args, "--tiers.config", tiers)
	}
	logPath := filepath.Join(dir, "apiserver.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		devtest.StopProcess(t, cmd)
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				s := string(b)
				if len(s) > 4000 {
					s = s[len(s)-4000:]
				}
				t.Logf("eventpipe apiserver's log (tail):\n%s", s)
			}
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed, test only
	waitFor(t, "eventpipe apiserver is ready", 2*time.Minute, func() (bool, string) {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return port
}

// hostEventQuery posts an EventQuery for the last hour with fieldSelector
// to the host as the user of cs, follows its pages, and returns the names
// of the events, sorted.
func hostEventQuery(ctx context.Context, cs *kubernetes.Clientset, fieldSelector string) ([]string, error) {
	q := v1alpha1.EventQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "EventQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: v1alpha1.EventQuerySpec{StartTime: "now-1h", EndTime: "now", FieldSelector: fieldSelector, Limit: 100}}
	var names []string
	for {
		b, err := json.Marshal(q)
		if err != nil {
			return nil, err
		}
		raw, err := cs.Discovery().RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/eventqueries").Body(b).
			SetHeader("Content-Type", "application/json").Do(ctx).Raw()
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, raw)
		}
		var got v1alpha1.EventQuery
		if err := json.Unmarshal(raw, &got); err != nil {
			return nil, err
		}
		for _, e := range got.Status.Results {
			names = append(names, e.Namespace+"/"+e.Name)
		}
		if got.Status.Continue == "" {
			sort.Strings(names)
			return names, nil
		}
		q.Spec.Continue = got.Status.Continue
	}
}

// TestEventQueryThroughHostAPIService: a stock kube-apiserver stores its
// Events in eventpipe through the etcd front and aggregates eventpipe's API
// server for activity.miloapis.com. Events created through kube-apiserver
// come back from an EventQuery sent through the same kube-apiserver, to
// its admin (a platform caller in eventpipe) and to a host user whom the
// host's authenticator puts in the front's scope, not to a host user of
// another scope; etcd holds none of them.
func TestEventQueryThroughHostAPIService(t *testing.T) {
	t.Parallel()
	// Dev mode (its etcd front) first: kube-apiserver needs the front's
	// endpoint at start.
	s := start(t, kubetest.Options{ExtraArgs: kubetest.TenantWebhook(t, hostTenants)})
	ctx := context.Background()
	// Then a second eventpipe API server, on the same NATS and ClickHouse,
	// configured with the host's front-proxy CA and kubeconfig, which only
	// exist now; dev mode's own API server is not aggregated.
	port := startAggregatedAPIServer(t, s.env, s.cluster)
	s.cluster.AggregateEventpipe(port)

	// RBAC in the host for the tenants: both may query.
	if _, err := s.client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "eventquery-user"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"activity.miloapis.com"}, Resources: []string{"eventqueries"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "eventquery-tenants"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "eventquery-user"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: kubetest.TenantsGroup}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	carol, err := kubernetes.NewForConfig(s.cluster.ConfigFor("tok-carol"))
	if err != nil {
		t.Fatal(err)
	}
	dave, err := kubernetes.NewForConfig(s.cluster.ConfigFor("tok-dave"))
	if err != nil {
		t.Fatal(err)
	}

	// Events through kube-apiserver, stored by the etcd front.
	var want []string
	for i := range 5 {
		ns := []string{"default", "kube-system"}[i%2]
		name := fmt.Sprintf("agg-%d", i)
		if _, err := s.client.CoreV1().Events(ns).Create(ctx, event(ns, name, "Aggregated"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s/%s: %v", ns, name, err)
		}
		want = append(want, ns+"/"+name)
	}
	sort.Strings(want)

	for _, c := range []struct {
		who string
		cs  *kubernetes.Clientset
	}{{"the host's admin", s.client}, {"carol, in the front's scope", carol}} {
		waitFor(t, "EventQuery through the host as "+c.who+" returns the events created through it", time.Minute, func() (bool, string) {
			got, err := hostEventQuery(ctx, c.cs, "reason=Aggregated")
			if err != nil {
				return false, err.Error()
			}
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("got %v, want %v", got, want)
		})
	}
	// Another tenant of the host, with the same RBAC, sees none of them:
	// its scope comes from the host's authenticator, through the
	// aggregator's headers.
	if got, err := hostEventQuery(ctx, dave, "reason=Aggregated"); err != nil || len(got) != 0 {
		t.Fatalf("EventQuery through the host as dave (Project/elsewhere): %v, %v; want no events", got, err)
	}
	if n := s.etcdEventKeys(t); n != 0 {
		t.Fatalf("etcd holds %d keys under /registry/events/, want 0", n)
	}
}
