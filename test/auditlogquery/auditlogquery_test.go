// Package auditlogquery tests AuditLogQuery end to end: the API server
// with its audit backends on a real ClickHouse, audit records stored as
// the audit indexer stores them (Store.InsertAudit), and real kubectl and
// client-go as three callers: a platform admin, alice in Project/alpha and
// bob in Project/beta.
package auditlogquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// watermark is the audit indexer's committed watermark as the test sets
// it; also the (unused) events watermark.
type watermark struct{ atomic.Uint64 }

func (w *watermark) WaitFor(context.Context, uint64) error { return nil }

// noLog stands in for the EVENTS stream: this test writes and reads no
// Kubernetes Events, only audit records.
type noLog struct{ apiserver.EventLog }

func (noLog) Bounds(context.Context) (uint64, uint64, error) { return 1, 1, nil }

func (noLog) PublishAll(context.Context, []*eventlog.Record, []string) error {
	return errors.New("the AuditLogQuery test's server takes no event writes")
}

var (
	alpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
)

// callers are the kubeconfigs and clients of the three users.
type callers struct {
	admin, alice, bob string // kubeconfig paths
	aliceClient       *kubernetes.Clientset
}

const basePath = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"

// startAPI runs the API server on s with the audit backends and returns the
// callers.
func startAPI(t *testing.T, s *chstore.Store, wm *watermark) callers {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	lines := `admin-token,admin,admin,"system:masters"` + "\n" +
		`alice-token,alice,alice,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=alpha"` + "\n" +
		`bob-token,bob,bob,"","iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=beta"` + "\n"
	require.NoError(t, os.WriteFile(tokens, []byte(lines), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	o := apiserver.NewOptions()
	o.SecureServing.Listener = l
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = l.Addr().(*net.TCPAddr).Port
	o.SecureServing.ServerCert.CertDirectory = filepath.Join(dir, "certs")
	o.TokenAuthFile = tokens
	cfg, err := o.Config(apiserver.Backends{Log: noLog{}, Index: event.ClickHouseIndex{Store: s}, History: s, Watermark: wm,
		Audit: &apiserver.AuditBackends{Index: s, Watermark: wm}})
	require.NoError(t, err)
	srv, err := cfg.Complete().New()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	host := "https://" + l.Addr().String()
	kubeconfig := func(user, token string) string {
		p := filepath.Join(dir, "kubeconfig-"+user)
		kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, host, token)
		require.NoError(t, os.WriteFile(p, []byte(kc), 0o600))
		return p
	}
	rc := &rest.Config{Host: host, BearerToken: "alice-token", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cs := kubernetes.NewForConfigOrDie(rc)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := cs.Discovery().ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
		assert.NoError(c, err, "API server not ready")
	}, 60*time.Second, 50*time.Millisecond)
	return callers{admin: kubeconfig("admin", "admin-token"), alice: kubeconfig("alice", "alice-token"),
		bob: kubeconfig("bob", "bob-token"), aliceClient: cs}
}

// record is one audit record as the indexer would store it, with the body
// kube-apiserver sends.
func record(sc scope.Scope, id, stage string, seq uint64, at time.Time, user, verb, group, resource, ns, name string, code int32) chstore.AuditRow {
	at = at.UTC()
	body := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id, "stage": stage,
		"requestURI": "/apis/" + group + "/v1/namespaces/" + ns + "/" + resource + "/" + name, "verb": verb,
		"user":                     map[string]any{"username": user, "groups": []string{"system:authenticated"}},
		"sourceIPs":                []string{"10.0.0.1"},
		"objectRef":                map[string]any{"resource": resource, "namespace": ns, "name": name, "apiGroup": group, "apiVersion": "v1"},
		"requestReceivedTimestamp": at.Format(metav1.RFC3339Micro), "stageTimestamp": at.Format(metav1.RFC3339Micro),
	}
	if code != 0 {
		body["responseStatus"] = map[string]any{"metadata": map[string]any{}, "code": code}
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return chstore.AuditRow{ScopeType: sc.Type, ScopeName: sc.Name, AuditID: id, Stage: stage, Seq: seq,
		RequestTime: at.Truncate(time.Second), RequestNanos: uint32(at.Nanosecond()), StageTime: at.Truncate(time.Second),
		Level: "Metadata", Verb: verb, User: user, UserGroups: []string{"system:authenticated"}, Namespace: ns,
		APIGroup: group, APIVersion: "v1", Resource: resource, Name: name, Code: code, SourceIP: "10.0.0.1", UserAgent: "kubectl", Body: b}
}

func query(spec v1alpha1.AuditLogQuerySpec) *v1alpha1.AuditLogQuery {
	return &v1alpha1.AuditLogQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "AuditLogQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: spec}
}

// kubectlCreate runs `kubectl create -f q.yaml -o yaml` as the user of
// kubeconfig and returns the answer, or kubectl's error output.
func kubectlCreate(t *testing.T, kubeconfig string, q *v1alpha1.AuditLogQuery) (*v1alpha1.AuditLogQuery, string) {
	t.Helper()
	b, err := yaml.Marshal(q)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "q.yaml")
	require.NoError(t, os.WriteFile(f, b, 0o644))
	stdout, stderr, err := kubetest.Kubectl(t, kubeconfig, "create", "-f", f, "-o", "yaml")
	if err != nil {
		return nil, stderr
	}
	var out v1alpha1.AuditLogQuery
	require.NoError(t, yaml.Unmarshal([]byte(stdout), &out))
	return &out, ""
}

func ids(q *v1alpha1.AuditLogQuery) []string {
	var out []string
	for _, ev := range q.Status.Results {
		out = append(out, string(ev.AuditID)+"/"+string(ev.Stage))
	}
	return out
}

func TestAuditLogQuery(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	rc := "ResponseComplete"
	rows := []chstore.AuditRow{
		record(alpha, "a1", rc, 1, now.Add(-50*time.Minute), "alice", "create", "apps", "deployments", "prod", "web", 201),
		record(alpha, "a2", rc, 2, now.Add(-40*time.Minute), "bob", "delete", "", "configmaps", "prod", "app-config", 200),
		record(beta, "b1", rc, 3, now.Add(-35*time.Minute), "alice", "create", "apps", "deployments", "prod", "web", 201),
		record(alpha, "a3", rc, 4, now.Add(-30*time.Minute), "mallory", "get", "", "secrets", "prod", "db", 403),
		record(alpha, "a4", "RequestReceived", 5, now.Add(-20*time.Minute), "alice", "patch", "apps", "deployments", "prod", "web", 0),
		record(alpha, "a4", rc, 6, now.Add(-20*time.Minute), "alice", "patch", "apps", "deployments", "prod", "web", 200),
		record(beta, "b2", rc, 7, now.Add(-10*time.Minute), "bob", "delete", "", "pods", "dev", "p", 200),
	}
	// The indexer stores a batch, fails to acknowledge it, and the batch
	// is stored again; kube-apiserver also retried a2 and a3 (new
	// sequences).
	require.NoError(t, s.InsertAudit(ctx, rows))
	require.NoError(t, s.InsertAudit(ctx, rows))
	retried := []chstore.AuditRow{rows[1], rows[3]}
	retried[0].Seq, retried[1].Seq = 8, 9
	require.NoError(t, s.InsertAudit(ctx, retried))
	wm := &watermark{}
	wm.Store(9)
	c := startAPI(t, s, wm)

	t.Run("each tenant sees its own records once", func(t *testing.T) {
		spec := v1alpha1.AuditLogQuerySpec{StartTime: "now-1h", EndTime: "now"}
		got, errOut := kubectlCreate(t, c.alice, query(spec))
		require.Empty(t, errOut)
		require.Equal(t, []string{"a4/RequestReceived", "a4/ResponseComplete", "a3/ResponseComplete", "a2/ResponseComplete", "a1/ResponseComplete"}, ids(got))
		require.Equal(t, "9", got.Status.ResourceVersion)
		require.Equal(t, "/apis/apps/v1/namespaces/prod/deployments/web", got.Status.Results[0].RequestURI, "the record as kube-apiserver sent it")
		require.Equal(t, "audit.k8s.io/v1", got.Status.Results[0].APIVersion)
		got, errOut = kubectlCreate(t, c.bob, query(spec))
		require.Empty(t, errOut)
		require.Equal(t, []string{"b2/ResponseComplete", "b1/ResponseComplete"}, ids(got))
		got, errOut = kubectlCreate(t, c.admin, query(spec))
		require.Empty(t, errOut)
		require.Len(t, got.Status.Results, 7, "the platform reads every tenant")
		// alice in alpha asks for what only beta has: nothing.
		got, errOut = kubectlCreate(t, c.alice, query(v1alpha1.AuditLogQuerySpec{StartTime: "now-1h", EndTime: "now", Namespace: "dev"}))
		require.Empty(t, errOut)
		require.Empty(t, got.Status.Results)
	})

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			spec v1alpha1.AuditLogQuerySpec
			want []string
		}{
			{v1alpha1.AuditLogQuerySpec{User: "alice", Stages: []string{rc}}, []string{"a4/ResponseComplete", "a1/ResponseComplete"}},
			{v1alpha1.AuditLogQuerySpec{Verbs: []string{"delete", "get"}}, []string{"a3/ResponseComplete", "a2/ResponseComplete"}},
			{v1alpha1.AuditLogQuerySpec{Resource: "deployments", APIGroup: ptr("apps"), Name: "web", Stages: []string{rc}}, []string{"a4/ResponseComplete", "a1/ResponseComplete"}},
			{v1alpha1.AuditLogQuerySpec{ResponseCodes: []string{"4xx"}}, []string{"a3/ResponseComplete"}},
			{v1alpha1.AuditLogQuerySpec{ResponseCodes: []string{"201", "403"}}, []string{"a3/ResponseComplete", "a1/ResponseComplete"}},
		} {
			spec := tc.spec
			spec.StartTime, spec.EndTime = "now-1h", "now"
			got, errOut := kubectlCreate(t, c.alice, query(spec))
			require.Empty(t, errOut)
			require.Equal(t, tc.want, ids(got), "%+v", tc.spec)
		}
	})

	t.Run("pages", func(t *testing.T) {
		spec := v1alpha1.AuditLogQuerySpec{StartTime: "now-1h", EndTime: "now", Limit: 2}
		var all []string
		first, errOut := kubectlCreate(t, c.alice, query(spec))
		require.Empty(t, errOut)
		all = append(all, ids(first)...)
		require.NotEmpty(t, first.Status.Continue)
		// A record committed between pages does not shift them.
		require.NoError(t, s.InsertAudit(ctx, []chstore.AuditRow{record(alpha, "a0", rc, 10, now.Add(-45*time.Minute), "x", "get", "", "pods", "prod", "p", 200)}))
		wm.Store(10)
		// bob cannot continue alice's query.
		stolen := spec
		stolen.Continue = first.Status.Continue
		_, errOut = kubectlCreate(t, c.bob, query(stolen))
		require.Contains(t, errOut, "spec.continue")
		require.Contains(t, errOut, "different query or caller")
		next := first.Status.Continue
		for next != "" {
			spec.Continue = next
			page, errOut := kubectlCreate(t, c.alice, query(spec))
			require.Empty(t, errOut)
			require.Equal(t, "9", page.Status.ResourceVersion, "every page answers at the first page's watermark")
			all = append(all, ids(page)...)
			next = page.Status.Continue
		}
		require.Equal(t, []string{"a4/RequestReceived", "a4/ResponseComplete", "a3/ResponseComplete", "a2/ResponseComplete", "a1/ResponseComplete"}, all)
		// A new query sees the new record.
		spec.Continue, spec.Limit = "", 0
		got, errOut := kubectlCreate(t, c.alice, query(spec))
		require.Empty(t, errOut)
		require.Len(t, got.Status.Results, 6)
		require.Equal(t, "10", got.Status.ResourceVersion)
	})

	t.Run("errors name the field", func(t *testing.T) {
		_, errOut := kubectlCreate(t, c.alice, query(v1alpha1.AuditLogQuerySpec{StartTime: "now-61d", EndTime: "now",
			ResponseCodes: []string{"4XX"}, Stages: []string{"Done"}}))
		require.Contains(t, errOut, `spec.startTime: Invalid value: "now-61d"`)
		require.Contains(t, errOut, `tier "default" may query the last`)
		require.Contains(t, errOut, `spec.responseCodes[0]: Invalid value: "4XX"`)
		require.Contains(t, errOut, `spec.stages[0]: Unsupported value: "Done"`)

		// Through client-go: a 422 in Status form.
		body, err := json.Marshal(query(v1alpha1.AuditLogQuerySpec{StartTime: "now", EndTime: "now-1h", Limit: 1001}))
		require.NoError(t, err)
		raw, err := c.aliceClient.Discovery().RESTClient().Post().AbsPath(basePath).Body(body).
			SetHeader("Content-Type", "application/json").Do(ctx).Raw()
		require.Error(t, err)
		var st metav1.Status
		require.NoError(t, json.Unmarshal(raw, &st))
		require.EqualValues(t, 422, st.Code)
		require.Equal(t, metav1.StatusReasonInvalid, st.Reason)
		var fields []string
		for _, cause := range st.Details.Causes {
			fields = append(fields, cause.Field)
		}
		require.ElementsMatch(t, []string{"spec.endTime", "spec.limit"}, fields)
		require.True(t, apierrors.IsInvalid(&apierrors.StatusError{ErrStatus: st}))
	})

	t.Run("kubectl explains it", func(t *testing.T) {
		out, stderr, err := kubetest.Kubectl(t, c.alice, "explain", "auditlogquery.spec.responseCodes")
		require.NoError(t, err, stderr)
		require.Contains(t, out, `"4xx"`)
		out, stderr, err = kubetest.Kubectl(t, c.alice, "explain", "auditlogquery.status.results.user")
		require.NoError(t, err, stderr)
		require.True(t, strings.Contains(out, "username"), out)
	})
}

func ptr[T any](v T) *T { return &v }
